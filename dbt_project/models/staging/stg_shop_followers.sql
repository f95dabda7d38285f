select
    id as follow_id,
    user_id,
    shop_id,
    created_at as followed_at,
    {{ cryptostore.utc_date('created_at') }} as followed_date
from {{ source('raw', 'shop_followers') }}
