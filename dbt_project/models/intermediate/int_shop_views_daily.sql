select
    shop_id,
    view_date as date,
    count(*) as views,
    count(distinct visitor_key) as unique_visitors,
    count(distinct product_id) as product_views
from {{ ref('fct_product_views') }}
where shop_id is not null
group by shop_id, view_date
