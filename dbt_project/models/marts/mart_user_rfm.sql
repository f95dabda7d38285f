{%- set window = var('rfm_window_days') | int -%}
-- RFM per customer (a user with at least one order that counts as revenue, in the reporting currency
-- {{ var('reporting_currency') }}), as of the last day with data:
--   recency   = days since their last such order;
--   frequency = such orders in the last {{ window }} days;  monetary = their revenue in that window;
--   lifetime_value = all their revenue to date.
-- Each score is the quintile (1-5, 5 best) among customers; equal values share a score.
with as_of as (
    select max(date_day) as as_of_date from {{ ref('dim_date') }}
),

orders as (
    select o.buyer_id as user_id, o.placed_date, o.total_amount
    from {{ ref('fct_orders') }} as o
    where o.counts_as_revenue and o.currency = '{{ var("reporting_currency") }}'
),

customers as (
    select
        o.user_id,
        min(o.placed_date) as first_order_date,
        max(o.placed_date) as last_order_date,
        count(*) as lifetime_orders,
        sum(o.total_amount) as lifetime_value,
        {{ cryptostore.count_where('o.placed_date > ' ~ cryptostore.add_days('a.as_of_date', -window)) }}
            as frequency,
        sum(case when o.placed_date > {{ cryptostore.add_days('a.as_of_date', -window) }}
            then o.total_amount else 0 end) as monetary,
        max(a.as_of_date) as as_of_date
    from orders as o
    cross join as_of as a
    group by o.user_id
),

measured as (
    select
        c.*,
        cast(c.as_of_date - c.last_order_date as integer) as recency_days,
        count(*) over () as customers,
        -- How many customers are as good as or worse than this one (peers included).
        count(*) over (order by c.as_of_date - c.last_order_date desc) as recency_rank,
        count(*) over (order by c.frequency) as frequency_rank,
        count(*) over (order by c.monetary) as monetary_rank
    from customers as c
),

scored as (
    select
        m.*,
        {{ cryptostore.rfm_score('recency_rank', 'customers') }} as r_score,
        {{ cryptostore.rfm_score('frequency_rank', 'customers') }} as f_score,
        {{ cryptostore.rfm_score('monetary_rank', 'customers') }} as m_score
    from measured as m
)

select
    s.user_id,
    s.as_of_date,
    s.first_order_date,
    s.last_order_date,
    s.recency_days,
    cast(s.frequency as bigint) as frequency,
    cast(s.monetary as {{ cryptostore.type_money() }}) as monetary,
    cast(s.lifetime_orders as bigint) as lifetime_orders,
    cast(s.lifetime_value as {{ cryptostore.type_money() }}) as lifetime_value,
    {{ cryptostore.avg_order_value('s.lifetime_value', 's.lifetime_orders') }} as avg_order_value,
    s.r_score,
    s.f_score,
    s.m_score,
    cast(s.r_score as varchar) || cast(s.f_score as varchar) || cast(s.m_score as varchar) as rfm_cell,
    case
        when s.r_score >= 4 and s.f_score >= 4 and s.m_score >= 4 then 'champion'
        when s.r_score >= 3 and s.f_score >= 3 then 'loyal'
        when s.r_score >= 4 then 'recent'
        when s.r_score <= 2 and s.f_score >= 3 then 'at_risk'
        when s.r_score <= 2 then 'lapsing'
        else 'needs_attention'
    end as rfm_segment
from scored as s
