-- Revenue per day and currency, every day from the first day with data for each currency ever used.
with currencies as (
    select distinct currency from {{ ref('fct_orders') }}
),

orders as (
    select
        placed_date as date,
        currency,
        count(*) as orders,
        {{ cryptostore.count_where("counts_as_revenue") }} as paid_orders,
        sum(revenue_amount) as revenue
    from {{ ref('fct_orders') }}
    group by placed_date, currency
),

daily as (
    select
        d.date_day as date,
        c.currency,
        coalesce(o.orders, 0) as orders,
        coalesce(o.paid_orders, 0) as paid_orders,
        cast(coalesce(o.revenue, 0) as {{ cryptostore.type_money() }}) as revenue
    from {{ ref('dim_date') }} as d
    cross join currencies as c
    left join orders as o on o.date = d.date_day and o.currency = c.currency
)

select
    date,
    currency,
    cast(orders as bigint) as orders,
    cast(paid_orders as bigint) as paid_orders,
    revenue,
    {{ cryptostore.avg_order_value('revenue', 'orders') }} as avg_order_value,
    cast(sum(revenue) over (partition by currency order by date rows between unbounded preceding and current row)
        as {{ cryptostore.type_money() }}) as cumulative_revenue
from daily
