{%- set minutes = var('search_click_minutes') | int -%}
-- Each search with whether it was clicked through: its (signed-in) searcher viewed a product within the
-- next {{ minutes }} minutes and before searching again. Searches and views of a user are put in one
-- timeline: a search is clicked through exactly when the next item after it is a view within the window
-- (a view at the same instant counts as after it; a second search at the same instant does not).
with timeline as (
    select event_id, user_id, occurred_at, 0 as is_view
    from {{ ref('stg_events__search_performed') }}
    where user_id is not null
    union all
    select cast(null as varchar) as event_id, user_id, occurred_at, 1 as is_view
    from {{ ref('fct_product_views') }}
    where user_id is not null
),

followed as (
    select
        event_id,
        is_view,
        occurred_at,
        lead(is_view) over (partition by user_id order by occurred_at, is_view, event_id) as next_is_view,
        lead(occurred_at) over (partition by user_id order by occurred_at, is_view, event_id) as next_at
    from timeline
)

select
    s.event_id,
    s.user_id,
    s.query_text,
    s.search_term,
    s.results_total,
    s.results_total = 0 as is_zero_result,
    case
        when s.user_id is null then null
        else coalesce(f.next_is_view = 1 and f.next_at <= s.occurred_at + interval '{{ minutes }} minutes', false)
    end as clicked_through,
    s.occurred_at,
    s.event_date as search_date
from {{ ref('stg_events__search_performed') }} as s
left join followed as f on f.event_id = s.event_id and f.is_view = 0
