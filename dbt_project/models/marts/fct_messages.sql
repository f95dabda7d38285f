{{ config(materialized='incremental', unique_key='message_id', incremental_strategy='delete+insert') }}

-- Keyed by the store's message id.
select
    message_id,
    conversation_id,
    shop_id,
    product_id,
    sender_id,
    recipient_id,
    message_type,
    text_length,
    attachment_id is not null as has_attachment,
    occurred_at as sent_at,
    event_date as sent_date,
    _loaded_at
from {{ ref('stg_events__message_sent') }}
{% if is_incremental() %}
where {{ cryptostore.loaded_since_last_run(this) }}
{% endif %}
