-- Every shop on every day from its creation day to the last day with data.
select
    s.shop_id,
    d.date_day as date
from {{ ref('dim_shops') }} as s
inner join {{ ref('dim_date') }} as d on d.date_day >= s.created_date
