-- Platform KPIs per day. Revenue and average order value are in the reporting currency
-- ({{ var('reporting_currency') }}); counts cover every currency.
with activity as (
    select activity_date as date, count(*) as active_users
    from {{ ref('int_user_daily_activity') }}
    group by activity_date
),

signups as (
    select signup_date as date, count(*) as new_users
    from {{ ref('dim_users') }}
    group by signup_date
),

orders as (
    select
        placed_date as date,
        count(distinct buyer_id) as buyers,
        count(*) as orders,
        {{ cryptostore.count_where("counts_as_revenue") }} as paid_orders,
        {{ cryptostore.count_where("currency = '" ~ var('reporting_currency') ~ "'") }} as currency_orders,
        sum(case when counts_as_revenue and currency = '{{ var("reporting_currency") }}'
            then total_amount end) as revenue
    from {{ ref('fct_orders') }}
    group by placed_date
),

daily as (
    select
        d.date_day as date,
        coalesce(a.active_users, 0) as active_users,
        coalesce(s.new_users, 0) as new_users,
        coalesce(o.buyers, 0) as buyers,
        coalesce(o.orders, 0) as orders,
        coalesce(o.paid_orders, 0) as paid_orders,
        coalesce(o.currency_orders, 0) as currency_orders,
        cast(coalesce(o.revenue, 0) as {{ cryptostore.type_money() }}) as revenue,
        c.active_users_window,
        c.churned_users,
        c.churn_rate
    from {{ ref('dim_date') }} as d
    left join activity as a on a.date = d.date_day
    left join signups as s on s.date = d.date_day
    left join orders as o on o.date = d.date_day
    left join {{ ref('int_platform_churn_daily') }} as c on c.date = d.date_day
)

select
    date,
    cast(active_users as bigint) as active_users,
    cast(new_users as bigint) as new_users,
    cast(buyers as bigint) as buyers,
    cast(orders as bigint) as orders,
    cast(paid_orders as bigint) as paid_orders,
    revenue,
    {{ cryptostore.avg_order_value('revenue', 'currency_orders') }} as avg_order_value,
    {{ cryptostore.conversion_rate('buyers', 'active_users') }} as conversion_rate,
    cast(churned_users as bigint) as churned_users,
    churn_rate,
    cast(active_users_window as bigint) as active_users_30d
from daily
