-- Orders by the day they were placed. Revenue counts the orders in the shop's currency only (an
-- amount in another currency cannot be added to it); those orders are counted apart.
select
    o.shop_id,
    o.placed_date as date,
    count(*) as orders,
    {{ cryptostore.count_where("o.counts_as_revenue") }} as paid_orders,
    cast(coalesce(sum(case when o.counts_as_revenue and o.currency = s.currency then o.total_amount end), 0)
        as {{ cryptostore.type_money() }}) as revenue,
    {{ cryptostore.count_where("o.currency = s.currency") }} as currency_orders,
    {{ cryptostore.count_where("o.currency <> s.currency") }} as foreign_currency_orders
from {{ ref('fct_orders') }} as o
inner join {{ ref('dim_shops') }} as s on s.shop_id = o.shop_id
group by o.shop_id, o.placed_date
