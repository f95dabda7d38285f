select
    id as product_id,
    shop_id,
    category_id,
    name as product_name,
    price,
    currency,
    stock,
    views as view_counter,
    sales_count as sales_counter,
    rating,
    rating_count,
    is_active,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as created_date,
    updated_at
from {{ source('raw', 'products') }}
