{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}

select
    event_id,
    event_type,
    shop_id,
    cast({{ cryptostore.json_str('payload', 'userId') }} as bigint) as user_id,
    case when event_type = 'shop.followed' then 1 else -1 end as follow_delta,
    cast({{ cryptostore.json_str('payload', 'followerCount') }} as integer) as follower_count_after,
    occurred_at,
    event_date,
    _loaded_at
from {{ ref('stg_events') }}
where event_type in ('shop.followed', 'shop.unfollowed')
{% if is_incremental() %}
  and {{ cryptostore.loaded_since_last_run(this) }}
{% endif %}
