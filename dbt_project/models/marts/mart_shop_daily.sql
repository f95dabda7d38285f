-- Shop analytics (seed 001 §2): one row per shop per day from the shop's creation day to the last day
-- with data, zeros on days without activity. The rates come from macros/metrics.sql.
with daily as (
    select
        sp.shop_id,
        sp.date,
        s.currency,
        coalesce(v.views, 0) as views,
        coalesce(v.unique_visitors, 0) as unique_visitors,
        coalesce(v.product_views, 0) as product_views,
        coalesce(m.messages_received, 0) as messages_received,
        coalesce(o.orders, 0) as orders,
        coalesce(o.paid_orders, 0) as paid_orders,
        cast(coalesce(o.revenue, 0) as {{ cryptostore.type_money() }}) as revenue,
        coalesce(o.currency_orders, 0) as currency_orders,
        coalesce(o.foreign_currency_orders, 0) as foreign_currency_orders,
        coalesce(f.new_followers, 0) as new_followers,
        coalesce(f.unfollows, 0) as unfollows
    from {{ ref('int_shop_day_spine') }} as sp
    inner join {{ ref('dim_shops') }} as s on s.shop_id = sp.shop_id
    left join {{ ref('int_shop_views_daily') }} as v on v.shop_id = sp.shop_id and v.date = sp.date
    left join {{ ref('int_shop_messages_daily') }} as m on m.shop_id = sp.shop_id and m.date = sp.date
    left join {{ ref('int_shop_orders_daily') }} as o on o.shop_id = sp.shop_id and o.date = sp.date
    left join {{ ref('int_shop_followers_daily') }} as f on f.shop_id = sp.shop_id and f.date = sp.date
)

select
    cast(shop_id as bigint) as shop_id,
    date,
    currency,
    cast(views as bigint) as views,
    cast(unique_visitors as bigint) as unique_visitors,
    cast(product_views as bigint) as product_views,
    cast(messages_received as bigint) as messages_received,
    cast(orders as bigint) as orders,
    cast(paid_orders as bigint) as paid_orders,
    revenue,
    cast(new_followers as bigint) as new_followers,
    {{ cryptostore.conversion_rate('orders', 'unique_visitors') }} as conversion_rate,
    -- Over the orders in the shop's currency (all of them unless it sells in several).
    {{ cryptostore.avg_order_value('revenue', 'currency_orders') }} as avg_order_value,
    cast(new_followers - unfollows as bigint) as net_followers,
    cast(foreign_currency_orders as bigint) as foreign_currency_orders
from daily
