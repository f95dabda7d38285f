{{ config(severity='error') }}
-- Every shop's revenue in mart_shop_daily adds up to its revenue orders in fct_orders (in the shop's
-- currency): a row lost or doubled by the day spine would show here.
with mart as (
    select shop_id, sum(revenue) as revenue, sum(orders) as orders
    from {{ ref('mart_shop_daily') }}
    group by shop_id
),

facts as (
    select
        o.shop_id,
        sum(case when o.counts_as_revenue and o.currency = s.currency then o.total_amount else 0 end) as revenue,
        count(*) as orders
    from {{ ref('fct_orders') }} as o
    inner join {{ ref('dim_shops') }} as s on s.shop_id = o.shop_id
    group by o.shop_id
)

select
    coalesce(m.shop_id, f.shop_id) as shop_id,
    m.revenue as mart_revenue,
    f.revenue as order_revenue,
    m.orders as mart_orders,
    f.orders as order_count
from mart as m
full outer join facts as f on f.shop_id = m.shop_id
where coalesce(m.revenue, 0) <> coalesce(f.revenue, 0) or coalesce(m.orders, 0) <> coalesce(f.orders, 0)
