select
    id as shop_id,
    owner_id,
    name as shop_name,
    latitude,
    longitude,
    delivery_available,
    follower_count,
    is_active,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as created_date,
    updated_at
from {{ source('raw', 'shops') }}
