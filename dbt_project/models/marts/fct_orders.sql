with items as (
    select order_id, count(*) as line_count, cast(sum(quantity) as bigint) as units
    from {{ ref('stg_order_items') }}
    group by order_id
),

orders as (
    select
        o.*,
        {{ cryptostore.counts_as_revenue('o.status', 'o.paid_at') }} as counts_as_revenue
    from {{ ref('stg_orders') }} as o
)

select
    o.order_id,
    o.buyer_id,
    o.shop_id,
    o.status,
    o.currency,
    o.total_amount,
    coalesce(i.line_count, 0) as line_count,
    coalesce(i.units, 0) as units,
    o.created_at,
    o.placed_date,
    o.paid_at,
    o.shipped_at,
    o.delivered_at,
    o.cancelled_at,
    o.paid_at is not null as was_paid,
    o.status = 'cancelled' as is_cancelled,
    o.counts_as_revenue,
    cast(case when o.counts_as_revenue then o.total_amount else 0 end as {{ cryptostore.type_money() }})
        as revenue_amount,
    o.payment_chain
from orders as o
left join items as i on i.order_id = o.order_id
