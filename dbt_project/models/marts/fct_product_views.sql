{{ config(materialized='incremental', unique_key='view_id', incremental_strategy='delete+insert') }}

-- Keyed by the store's view id: the event's UUID would cost more to store than the rest of the row.
select
    view_id,
    product_id,
    shop_id,
    user_id,
    session_id,
    visitor_key,
    user_id is null as is_anonymous,
    duration_seconds,
    referrer,
    occurred_at,
    event_date as view_date,
    _loaded_at
from {{ ref('stg_events__product_viewed') }}
{% if is_incremental() %}
where {{ cryptostore.loaded_since_last_run(this) }}
{% endif %}
