-- The shop funnel per day: view → chat → order → paid. A step counts the signed-in users who did it
-- at the shop that UTC day and reached the steps before it that day (chatting is optional on the way
-- to an order: view_to_order counts every viewer who ordered, chat_to_order those who also chatted).
with viewers as (
    select distinct shop_id, view_date as date, user_id
    from {{ ref('fct_product_views') }}
    where user_id is not null and shop_id is not null
),

chatters as (
    select distinct m.shop_id, m.sent_date as date, m.sender_id as user_id
    from {{ ref('fct_messages') }} as m
    inner join {{ ref('dim_shops') }} as s on s.shop_id = m.shop_id and m.recipient_id = s.owner_id
),

orderers as (
    select
        shop_id,
        placed_date as date,
        buyer_id as user_id,
        max(case when counts_as_revenue then 1 else 0 end) as paid
    from {{ ref('fct_orders') }}
    group by shop_id, placed_date, buyer_id
),

steps as (
    select
        v.shop_id,
        v.date,
        v.user_id,
        case when c.user_id is not null then 1 else 0 end as chatted,
        case when o.user_id is not null then 1 else 0 end as ordered,
        coalesce(o.paid, 0) as paid
    from viewers as v
    left join chatters as c on c.shop_id = v.shop_id and c.date = v.date and c.user_id = v.user_id
    left join orderers as o on o.shop_id = v.shop_id and o.date = v.date and o.user_id = v.user_id
),

counts as (
    select
        shop_id,
        date,
        count(*) as users_viewed,
        sum(chatted) as users_chatted,
        sum(ordered) as users_ordered,
        sum(chatted * ordered) as users_chatted_and_ordered,
        sum(paid) as users_paid
    from steps
    group by shop_id, date
)

select
    cast(shop_id as bigint) as shop_id,
    date,
    cast(users_viewed as bigint) as users_viewed,
    cast(users_chatted as bigint) as users_chatted,
    cast(users_ordered as bigint) as users_ordered,
    cast(users_chatted_and_ordered as bigint) as users_chatted_and_ordered,
    cast(users_paid as bigint) as users_paid,
    {{ cryptostore.rate('users_chatted', 'users_viewed') }} as view_to_chat_rate,
    {{ cryptostore.rate('users_chatted_and_ordered', 'users_chatted') }} as chat_to_order_rate,
    {{ cryptostore.rate('users_ordered', 'users_viewed') }} as view_to_order_rate,
    {{ cryptostore.rate('users_paid', 'users_ordered') }} as order_to_paid_rate
from counts
