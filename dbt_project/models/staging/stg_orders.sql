select
    id as order_id,
    buyer_id,
    shop_id,
    status,
    total_amount,
    currency,
    payment_chain,
    tracking_number is not null as has_tracking_number,
    cancel_reason,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as placed_date,
    updated_at,
    paid_at,
    shipped_at,
    delivered_at,
    cancelled_at
from {{ source('raw', 'orders') }}
