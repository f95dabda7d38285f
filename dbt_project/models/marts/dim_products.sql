select
    p.product_id,
    p.shop_id,
    p.category_id,
    c.category_name,
    p.product_name,
    p.price,
    p.currency,
    p.stock,
    p.rating,
    p.rating_count,
    p.is_active,
    p.created_at,
    p.created_date
from {{ ref('stg_products') }} as p
left join {{ ref('stg_categories') }} as c on c.category_id = p.category_id
