-- A view: nothing downstream reads it at volume (orders come from the orders snapshot).
select
    event_id,
    event_type,
    coalesce(order_id, entity_id) as order_id,
    shop_id,
    cast({{ cryptostore.json_str('payload', 'buyerId') }} as bigint) as buyer_id,
    {{ cryptostore.json_str('payload', 'from') }} as status_from,
    -- order.placed has no `to`: a new order is pending.
    coalesce({{ cryptostore.json_str('payload', 'to') }}, 'pending') as status_to,
    {{ cryptostore.json_str('payload', 'by') }} as changed_by,
    cast({{ cryptostore.json_str('payload', 'total') }} as decimal(20, 8)) as total_amount,
    {{ cryptostore.json_str('payload', 'currency') }} as currency,
    actor_user_id,
    occurred_at,
    event_date,
    _loaded_at
from {{ ref('stg_events') }}
where event_type in ('order.placed', 'order.paid', 'order.cancelled', 'order.shipped', 'order.delivered')
