select
    shop_id,
    event_date as date,
    {{ cryptostore.count_where("follow_delta > 0") }} as new_followers,
    {{ cryptostore.count_where("follow_delta < 0") }} as unfollows
from {{ ref('stg_events__shop_follow') }}
group by shop_id, event_date
