{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}

select
    event_id,
    actor_user_id as user_id,
    {{ cryptostore.json_str('payload', 'query') }} as query_text,
    -- The store's own normalisation (lower-cased words, stop words dropped), joined by spaces.
    {{ cryptostore.json_str_array_joined('payload', 'terms') }} as search_term,
    cast({{ cryptostore.json_str('payload', 'total') }} as bigint) as results_total,
    cast({{ cryptostore.json_str('payload', 'page') }} as integer) as page,
    cast({{ cryptostore.json_str('payload', 'pageSize') }} as integer) as page_size,
    {{ cryptostore.json_str('payload', 'sort') }} as sort_order,
    occurred_at,
    event_date,
    _loaded_at
from {{ ref('stg_events') }}
where event_type = 'search.performed'
{% if is_incremental() %}
  and {{ cryptostore.loaded_since_last_run(this) }}
{% endif %}
