select
    i.order_item_id,
    i.order_id,
    i.product_id,
    o.shop_id,
    o.buyer_id,
    o.currency,
    i.quantity,
    i.unit_price,
    i.line_total,
    o.placed_date,
    o.counts_as_revenue,
    cast(case when o.counts_as_revenue then i.line_total else 0 end as {{ cryptostore.type_money() }})
        as revenue_amount
from {{ ref('stg_order_items') }} as i
inner join {{ ref('fct_orders') }} as o on o.order_id = i.order_id
