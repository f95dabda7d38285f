{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}

select
    event_id,
    event_type,
    entity_id as call_id,
    shop_id,
    product_id,
    cast({{ cryptostore.json_str('payload', 'callerId') }} as bigint) as caller_id,
    cast({{ cryptostore.json_str('payload', 'receiverId') }} as bigint) as receiver_id,
    cast({{ cryptostore.json_str('payload', 'conversationId') }} as bigint) as conversation_id,
    {{ cryptostore.json_str('payload', 'callType') }} as call_type,
    {{ cryptostore.json_str('payload', 'from') }} as status_from,
    {{ cryptostore.json_str('payload', 'to') }} as status_to,
    cast({{ cryptostore.json_str('payload', 'duration') }} as integer) as duration_seconds,
    {{ cryptostore.json_str('payload', 'reason') }} as reason,
    actor_user_id,
    occurred_at,
    event_date,
    _loaded_at
from {{ ref('stg_events') }}
where event_type like 'call.%'
{% if is_incremental() %}
  and {{ cryptostore.loaded_since_last_run(this) }}
{% endif %}
