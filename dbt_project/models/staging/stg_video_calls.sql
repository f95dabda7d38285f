select
    id as call_id,
    caller_id,
    receiver_id,
    conversation_id,
    call_type,
    status,
    duration as duration_seconds,
    started_at,
    ended_at,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as call_date
from {{ source('raw', 'video_calls') }}
