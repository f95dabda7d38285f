-- The last message's text stays in raw: nothing downstream needs it.
select
    id as conversation_id,
    buyer_id,
    seller_id,
    shop_id,
    product_id,
    last_message_at,
    buyer_unread_count,
    seller_unread_count,
    buyer_archived,
    seller_archived,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as created_date,
    updated_at
from {{ source('raw', 'conversations') }}
