-- Calls as the store holds them now; the shop comes from the call.initiated event (the calls table
-- does not carry it).
with initiated as (
    select call_id, shop_id, product_id
    from {{ ref('stg_events__call') }}
    where event_type = 'call.initiated'
)

select
    c.call_id,
    c.caller_id,
    c.receiver_id,
    c.conversation_id,
    i.shop_id,
    i.product_id,
    c.call_type,
    c.status,
    c.started_at is not null as was_answered,
    coalesce(c.duration_seconds, 0) as duration_seconds,
    c.created_at,
    c.call_date,
    c.started_at,
    c.ended_at
from {{ ref('stg_video_calls') }} as c
left join initiated as i on i.call_id = c.call_id
