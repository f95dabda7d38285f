-- Email stays in raw: nothing downstream needs it.
select
    id as user_id,
    username,
    role,
    is_active,
    failed_login_count,
    last_login_at,
    created_at,
    {{ cryptostore.utc_date('created_at') }} as signup_date,
    updated_at
from {{ source('raw', 'users') }}
