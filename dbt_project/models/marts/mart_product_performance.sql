-- Each product over its whole life: views, visitors, orders, units and revenue, reviews.
with views as (
    select
        product_id,
        count(*) as views,
        count(distinct visitor_key) as unique_visitors,
        min(occurred_at) as first_viewed_at,
        max(occurred_at) as last_viewed_at
    from {{ ref('fct_product_views') }}
    group by product_id
),

sales as (
    select
        product_id,
        count(distinct order_id) as orders,
        sum(quantity) as units_ordered,
        count(distinct case when counts_as_revenue then order_id end) as paid_orders,
        sum(case when counts_as_revenue then quantity else 0 end) as units_sold,
        sum(revenue_amount) as revenue
    from {{ ref('fct_order_items') }}
    group by product_id
),

reviews as (
    select product_id, count(*) as reviews, avg(cast(rating as {{ cryptostore.type_double() }})) as avg_rating
    from {{ ref('stg_reviews') }}
    group by product_id
)

select
    p.product_id,
    p.shop_id,
    p.category_id,
    p.product_name,
    p.price,
    p.currency,
    p.is_active,
    cast(coalesce(v.views, 0) as bigint) as views,
    cast(coalesce(v.unique_visitors, 0) as bigint) as unique_visitors,
    cast(coalesce(s.orders, 0) as bigint) as orders,
    cast(coalesce(s.paid_orders, 0) as bigint) as paid_orders,
    cast(coalesce(s.units_ordered, 0) as bigint) as units_ordered,
    cast(coalesce(s.units_sold, 0) as bigint) as units_sold,
    cast(coalesce(s.revenue, 0) as {{ cryptostore.type_money() }}) as revenue,
    {{ cryptostore.conversion_rate('coalesce(s.orders, 0)', 'v.unique_visitors') }} as conversion_rate,
    cast(coalesce(r.reviews, 0) as bigint) as reviews,
    r.avg_rating,
    v.first_viewed_at,
    v.last_viewed_at
from {{ ref('dim_products') }} as p
left join views as v on v.product_id = p.product_id
left join sales as s on s.product_id = p.product_id
left join reviews as r on r.product_id = p.product_id
