-- A view: the fact table built on it is the incremental copy.
with views as (
    select
        event_id,
        entity_id as view_id,
        product_id,
        shop_id,
        cast({{ cryptostore.json_str('payload', 'userId') }} as bigint) as user_id,
        {{ cryptostore.json_str('payload', 'sessionId') }} as session_id,
        cast({{ cryptostore.json_str('payload', 'duration') }} as integer) as duration_seconds,
        {{ cryptostore.json_str('payload', 'referrer') }} as referrer,
        occurred_at,
        event_date,
        _loaded_at
    from {{ ref('stg_events') }}
    where event_type = 'product.viewed'
)

select
    event_id,
    view_id,
    product_id,
    shop_id,
    user_id,
    session_id,
    {{ cryptostore.visitor_key('user_id', 'session_id', 'view_id') }} as visitor_key,
    duration_seconds,
    referrer,
    occurred_at,
    event_date,
    _loaded_at
from views
