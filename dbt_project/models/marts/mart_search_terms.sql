-- Searches per day and normalised term (the store's terms joined by spaces; searches by filters alone,
-- without words, are left out).
select
    search_date as date,
    search_term,
    cast(count(*) as bigint) as searches,
    cast(count(distinct user_id) as bigint) as searchers,
    {{ cryptostore.count_where("is_zero_result") }} as zero_result_searches,
    {{ cryptostore.rate(cryptostore.count_where('is_zero_result'), 'count(*)') }} as zero_result_rate,
    {{ cryptostore.count_where("clicked_through") }} as clicked_searches,
    {{ cryptostore.rate(cryptostore.count_where('clicked_through'), 'count(clicked_through)') }}
        as click_through_rate,
    avg(cast(results_total as {{ cryptostore.type_double() }})) as avg_results
from {{ ref('int_searches') }}
where search_term is not null and search_term <> ''
group by search_date, search_term
