select
    id as review_id,
    product_id,
    user_id,
    order_id,
    rating,
    comment is not null and comment <> '' as has_comment,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as review_date
from {{ source('raw', 'reviews') }}
