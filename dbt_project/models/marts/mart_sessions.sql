{%- set gap = var('session_gap_minutes') | int -%}
{{ config(materialized='incremental', unique_key='user_id', incremental_strategy='delete+insert') }}

-- Sessions: a user's events split where {{ gap }} minutes pass without one (a gap of exactly {{ gap }}
-- minutes stays in the session). Incremental by user: every user with newly loaded events has all
-- their sessions recomputed (a late event may join or split sessions), everyone else is untouched.
with
{% if is_incremental() %}
touched_users as (
    select distinct user_id
    from {{ ref('int_user_events') }}
    where {{ cryptostore.loaded_since_last_run(this) }}
),
{% endif %}
events as (
    select
        e.user_id,
        e.event_seq,
        e.event_type,
        e.occurred_at,
        e._loaded_at,
        lag(e.occurred_at) over (partition by e.user_id order by e.occurred_at, e.event_seq) as previous_at
    from {{ ref('int_user_events') }} as e
    {% if is_incremental() %}
    where e.user_id in (select user_id from touched_users)
    {% endif %}
),

numbered as (
    select
        events.*,
        sum(case when previous_at is null or occurred_at > previous_at + interval '{{ gap }} minutes'
            then 1 else 0 end)
            over (partition by user_id order by occurred_at, event_seq rows between unbounded preceding and current row)
            as session_number
    from events
)

select
    cast(user_id as varchar) || '-' || cast(session_number as varchar) as session_id,
    user_id,
    cast(session_number as bigint) as session_number,
    min(occurred_at) as session_start,
    max(occurred_at) as session_end,
    {{ cryptostore.utc_date('min(occurred_at)') }} as session_date,
    cast(extract(epoch from (max(occurred_at) - min(occurred_at))) as bigint) as duration_seconds,
    cast(count(*) as bigint) as events,
    {{ cryptostore.count_where("event_type = 'product.viewed'") }} as views,
    {{ cryptostore.count_where("event_type = 'search.performed'") }} as searches,
    {{ cryptostore.count_where("event_type = 'order.placed'") }} as orders,
    {{ cryptostore.count_where("event_type = 'message.sent'") }} as messages,
    max(_loaded_at) as _loaded_at
from numbered
group by user_id, session_number
