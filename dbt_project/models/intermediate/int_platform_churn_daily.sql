{%- set window = var('churn_window_days') | int -%}
-- Churn as of a day d, with W = {{ window }} days: a user churned on d when they were active in the
-- previous window [d - 2W + 1, d - W] and not in the window ending on d [d - W + 1, d]; the churn rate
-- divides by the users active in the previous window.
--
-- For each user and day d take their last active day a <= d: they are active in the window ending on d
-- when a >= d - W + 1, and churned on d when d - 2W + 1 <= a <= d - W. So an active day a, followed by
-- the user's next active day n, makes them active on the days [a, min(a + W, n)) and churned on
-- [a + W, min(a + 2W, n)). Each such interval adds +1 on its first day and -1 on the day after it;
-- a running sum over the days counts the users (linear in the active days, no range join).
with spans as (
    select
        activity_date as active_from,
        lead(activity_date) over (partition by user_id order by activity_date) as next_active_date
    from {{ ref('int_user_daily_activity') }}
),

intervals as (
    select
        active_from,
        case when next_active_date is null or next_active_date > {{ cryptostore.add_days('active_from', window) }}
            then {{ cryptostore.add_days('active_from', window) }} else next_active_date end as active_until,
        case when next_active_date is null or next_active_date > {{ cryptostore.add_days('active_from', window) }}
            then {{ cryptostore.add_days('active_from', window) }} end as churned_from,
        case when next_active_date is null or next_active_date > {{ cryptostore.add_days('active_from', 2 * window) }}
            then {{ cryptostore.add_days('active_from', 2 * window) }} else next_active_date end as churned_until
    from spans
),

deltas as (
    select active_from as day, 1 as active_delta, 0 as churned_delta from intervals
    union all
    select active_until, -1, 0 from intervals
    union all
    select churned_from, 0, 1 from intervals where churned_from is not null
    union all
    select churned_until, 0, -1 from intervals where churned_from is not null
),

daily_deltas as (
    select day, sum(active_delta) as active_delta, sum(churned_delta) as churned_delta
    from deltas
    group by day
),

counts as (
    select
        d.date_day as date,
        cast(sum(coalesce(x.active_delta, 0)) over (order by d.date_day rows between unbounded preceding and current row)
            as bigint) as active_users,
        cast(sum(coalesce(x.churned_delta, 0)) over (order by d.date_day rows between unbounded preceding and current row)
            as bigint) as churned_users
    from {{ ref('dim_date') }} as d
    left join daily_deltas as x on x.day = d.date_day
)

select
    c.date,
    c.active_users as active_users_window,
    coalesce(p.active_users, 0) as active_users_previous_window,
    c.churned_users,
    {{ cryptostore.rate('c.churned_users', 'p.active_users') }} as churn_rate
from counts as c
left join counts as p on p.date = {{ cryptostore.add_days('c.date', -window) }}
