-- Messages received by a shop: those sent to its owner in conversations with the shop.
select
    m.shop_id,
    m.sent_date as date,
    count(*) as messages_received
from {{ ref('fct_messages') }} as m
inner join {{ ref('dim_shops') }} as s on s.shop_id = m.shop_id and m.recipient_id = s.owner_id
group by m.shop_id, m.sent_date
