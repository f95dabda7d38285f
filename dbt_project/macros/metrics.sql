{#- The platform's metric definitions, in one place: every model computes these through the macros
    below, never by hand (docs/ and contract: "Metric definitions").

    A day is the UTC date of the event's occurred_at (of orders.created_at for orders), never the load
    time, so a late event lands in its own day. -#}

{#- An order counts for revenue when it has been paid and not cancelled since: paid_at is set and the
    status is one of paid, shipped, delivered. It counts on the day it was placed. -#}
{% macro counts_as_revenue(status, paid_at) -%}
    ({{ paid_at }} is not null and {{ status }} in ('paid', 'shipped', 'delivered'))
{%- endmacro %}

{#- conversion_rate = orders / unique visitors (NULL when there were no visitors). The platform's
    conversion is the same ratio with buyers over active users. -#}
{% macro conversion_rate(orders, visitors) -%}
    {{ cryptostore.safe_ratio(orders, visitors) }}
{%- endmacro %}

{#- avg_order_value = revenue / orders (NULL when there were no orders), an exact DECIMAL(38, 8). -#}
{% macro avg_order_value(revenue, orders) -%}
    {{ cryptostore.decimal_ratio(revenue, orders) }}
{%- endmacro %}

{#- Who a product view counts as for unique visitors: the signed-in user, else the client's session id,
    else (an anonymous view without a session) the view itself, so such views count one visitor each. -#}
{% macro visitor_key(user_id, session_id, view_id) -%}
    case
        when {{ user_id }} is not null then 'u:' || cast({{ user_id }} as varchar)
        when {{ session_id }} is not null then 's:' || {{ session_id }}
        else 'v:' || cast({{ view_id }} as varchar)
    end
{%- endmacro %}

{#- A rate in [0, 1] of two counts (step rates, retention, churn, zero-result and click-through). -#}
{% macro rate(numerator, denominator) -%}
    {{ cryptostore.safe_ratio(numerator, denominator) }}
{%- endmacro %}

{#- An RFM score from 1 to 5: the quintile of `rank_le`, the number of customers whose value is as good
    as or worse than this one's (peers share a score), among `customers`. -#}
{% macro rfm_score(rank_le, customers) -%}
    cast({{ cryptostore.ceil_div('5 * (' ~ rank_le ~ ')', customers) }} as integer)
{%- endmacro %}
