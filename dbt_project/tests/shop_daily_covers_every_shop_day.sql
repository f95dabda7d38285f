{{ config(severity='error') }}
-- One row per shop per day from its creation day to the last day with data, none missing, none extra.
with expected as (
    select s.shop_id, count(*) as days
    from {{ ref('dim_shops') }} as s
    inner join {{ ref('dim_date') }} as d on d.date_day >= s.created_date
    group by s.shop_id
),

actual as (
    select shop_id, count(*) as days, min(date) as first_day
    from {{ ref('mart_shop_daily') }}
    group by shop_id
)

select e.shop_id, e.days as expected_days, a.days as actual_days
from expected as e
left join actual as a on a.shop_id = e.shop_id
where a.days is null or a.days <> e.days
