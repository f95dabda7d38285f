-- Monthly sign-up cohorts × months since sign-up: how many of the cohort were active that month.
-- Month 0 is the sign-up month; every cohort has a row for every month up to the last with data.
with cohorts as (
    select cohort_month, count(*) as cohort_size
    from {{ ref('dim_users') }}
    group by cohort_month
),

months as (
    select distinct month_start from {{ ref('dim_date') }}
),

active as (
    select
        u.cohort_month,
        {{ cryptostore.month_start('a.activity_date') }} as activity_month,
        count(distinct a.user_id) as active_users
    from {{ ref('int_user_daily_activity') }} as a
    inner join {{ ref('dim_users') }} as u on u.user_id = a.user_id
    group by u.cohort_month, {{ cryptostore.month_start('a.activity_date') }}
)

select
    c.cohort_month,
    m.month_start as activity_month,
    {{ cryptostore.months_between('c.cohort_month', 'm.month_start') }} as months_since_signup,
    cast(c.cohort_size as bigint) as cohort_size,
    cast(coalesce(a.active_users, 0) as bigint) as active_users,
    {{ cryptostore.rate('coalesce(a.active_users, 0)', 'c.cohort_size') }} as retention_rate
from cohorts as c
inner join months as m on m.month_start >= c.cohort_month
left join active as a on a.cohort_month = c.cohort_month and a.activity_month = m.month_start
