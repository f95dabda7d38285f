{#- Models land in exactly the schema their folder names (staging, intermediate, marts), not dbt's
    default `<target schema>_<custom>`: the API, the dashboard and the checks read fixed names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
