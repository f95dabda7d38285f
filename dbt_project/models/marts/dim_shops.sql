-- A shop reports in the currency most of its products are priced in (ties: alphabetical first);
-- a shop without products reports in the reporting currency.
with product_currencies as (
    select
        shop_id,
        currency,
        row_number() over (partition by shop_id order by count(*) desc, currency) as rank_in_shop
    from {{ ref('stg_products') }}
    group by shop_id, currency
),

product_counts as (
    select shop_id, count(*) as products, {{ cryptostore.count_where("is_active") }} as active_products
    from {{ ref('stg_products') }}
    group by shop_id
)

select
    s.shop_id,
    s.owner_id,
    s.shop_name,
    s.created_at,
    s.created_date,
    coalesce(c.currency, '{{ var("reporting_currency") }}') as currency,
    s.is_active,
    s.delivery_available,
    s.latitude,
    s.longitude,
    s.follower_count,
    coalesce(p.products, 0) as products,
    coalesce(p.active_products, 0) as active_products
from {{ ref('stg_shops') }} as s
left join product_currencies as c on c.shop_id = s.shop_id and c.rank_in_shop = 1
left join product_counts as p on p.shop_id = s.shop_id
