{#- The incremental filter shared by the event models: rows loaded by the last load already seen and
    every later one. By load time, never by occurred_at, so a late event (old occurred_at, loaded now)
    is picked up; the last load is taken again because its rows may not all have been seen (delete+insert
    on the unique key makes that repeat harmless). -#}
{% macro loaded_since_last_run(relation, column='_loaded_at') -%}
    {{ column }} >= (
        select coalesce(max({{ column }}), cast('1970-01-01 00:00:00+00' as timestamptz)) from {{ relation }}
    )
{%- endmacro %}
