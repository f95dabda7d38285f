-- A view: the fact table built on it is the incremental copy.
select
    event_id,
    entity_id as message_id,
    cast({{ cryptostore.json_str('payload', 'conversationId') }} as bigint) as conversation_id,
    shop_id,
    product_id,
    cast({{ cryptostore.json_str('payload', 'senderId') }} as bigint) as sender_id,
    cast({{ cryptostore.json_str('payload', 'recipientId') }} as bigint) as recipient_id,
    {{ cryptostore.json_str('payload', 'messageType') }} as message_type,
    cast({{ cryptostore.json_str('payload', 'length') }} as integer) as text_length,
    cast({{ cryptostore.json_str('payload', 'attachmentId') }} as bigint) as attachment_id,
    occurred_at,
    event_date,
    _loaded_at
from {{ ref('stg_events') }}
where event_type = 'message.sent'
