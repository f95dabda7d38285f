with activity as (
    select
        user_id,
        min(activity_date) as first_active_date,
        max(activity_date) as last_active_date,
        count(*) as active_days
    from {{ ref('int_user_daily_activity') }}
    group by user_id
)

select
    u.user_id,
    u.username,
    u.role,
    u.is_active,
    u.created_at,
    u.signup_date,
    {{ cryptostore.month_start('u.signup_date') }} as cohort_month,
    u.last_login_at,
    a.first_active_date,
    a.last_active_date,
    coalesce(a.active_days, 0) as active_days
from {{ ref('stg_users') }} as u
left join activity as a on a.user_id = u.user_id
