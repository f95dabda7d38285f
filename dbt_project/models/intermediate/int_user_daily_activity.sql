{{ config(materialized='incremental', unique_key='activity_date', incremental_strategy='delete+insert') }}

-- One row per user per day they were active. Incremental by day: the days touched by newly loaded
-- events are recomputed whole (delete+insert on the day), so a late event updates its own day.
{% if is_incremental() %}
with touched_days as (
    select distinct event_date
    from {{ ref('int_user_events') }}
    where _loaded_at >= (
        select coalesce(max(_loaded_at), cast('1970-01-01 00:00:00+00' as timestamptz)) from {{ this }}
    )
),
{% else %}
with
{% endif %}
events as (
    select e.*
    from {{ ref('int_user_events') }} as e
    {% if is_incremental() %}
    where e.event_date in (select event_date from touched_days)
    {% endif %}
)

select
    user_id,
    event_date as activity_date,
    count(*) as events,
    {{ cryptostore.count_where("event_type = 'product.viewed'") }} as product_views,
    {{ cryptostore.count_where("event_type = 'search.performed'") }} as searches,
    {{ cryptostore.count_where("event_type = 'order.placed'") }} as orders_placed,
    {{ cryptostore.count_where("event_type = 'message.sent'") }} as messages_sent,
    max(_loaded_at) as _loaded_at
from events
group by user_id, event_date
