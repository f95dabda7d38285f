select
    id as category_id,
    name as category_name,
    slug as category_slug,
    parent_id as parent_category_id,
    created_at
from {{ source('raw', 'categories') }}
