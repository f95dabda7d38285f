-- Message bodies stay in raw: only their length travels on.
select
    id as message_id,
    conversation_id,
    sender_id,
    message_type,
    length(coalesce(body, '')) as body_length,
    attachment_url is not null as has_attachment,
    is_read,
    read_at,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as sent_date
from {{ source('raw', 'messages') }}
