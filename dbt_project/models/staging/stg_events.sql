-- A view: copying every event (payload included) would double the warehouse and cost most of a full
-- build. Incremental models downstream filter it on _loaded_at, which the engines push down to the
-- raw table's scan.

select
    event_id,
    cast(id as bigint) as event_seq,
    event_type,
    schema_version,
    occurred_at,
    recorded_at,
    {{ cryptostore.utc_date('occurred_at') }} as event_date,
    actor_user_id,
    entity_type,
    entity_id,
    shop_id,
    product_id,
    order_id,
    request_id,
    payload,
    _loaded_at
from {{ source('raw', 'events') }}
