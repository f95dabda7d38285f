-- Every day from the first day with data to the last (by event day, sign-up and shop creation), so
-- daily marts can show days without activity.
with bounds as (
    select
        least(
            (select {{ cryptostore.utc_date('min(occurred_at)') }} from {{ ref('stg_events') }}),
            (select min(signup_date) from {{ ref('stg_users') }}),
            (select min(created_date) from {{ ref('stg_shops') }})
        ) as start_date,
        greatest(
            (select {{ cryptostore.utc_date('max(occurred_at)') }} from {{ ref('stg_events') }}),
            (select max(placed_date) from {{ ref('stg_orders') }})
        ) as end_date
),

days as (
    {{ cryptostore.day_series('bounds') }}
)

select
    date_day,
    cast(extract(year from date_day) as integer) as year,
    cast(extract(month from date_day) as integer) as month,
    cast(extract(day from date_day) as integer) as day_of_month,
    -- ISO: Monday = 1 ... Sunday = 7.
    cast(extract(isodow from date_day) as integer) as iso_day_of_week,
    cast(extract(isodow from date_day) as integer) in (6, 7) as is_weekend,
    {{ cryptostore.month_start('date_day') }} as month_start,
    cast(date_trunc('week', cast(date_day as timestamp)) as date) as week_start
from days
