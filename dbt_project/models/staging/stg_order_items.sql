select
    id as order_item_id,
    order_id,
    product_id,
    quantity,
    unit_price,
    line_total,
    created_at
from {{ source('raw', 'order_items') }}
