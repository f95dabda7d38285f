{#- The few spots where DuckDB and PostgreSQL spell SQL differently. Every model goes through these
    so the same SQL builds on both targets. -#}

{#- A payload key as text (NULL when absent or JSON null). -#}
{% macro json_str(column, key) -%}
    {{ return(adapter.dispatch('json_str', 'cryptostore')(column, key)) }}
{%- endmacro %}

{% macro default__json_str(column, key) -%}
    (cast({{ column }} as jsonb) ->> '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_str(column, key) -%}
    json_extract_string({{ column }}, '$.{{ key }}')
{%- endmacro %}

{#- The UTC calendar day of a timestamptz, whatever the session's time zone. -#}
{% macro utc_date(column) -%}
    cast(({{ column }} at time zone 'UTC') as date)
{%- endmacro %}

{#- The UTC wall-clock time of a timestamptz as a plain timestamp. -#}
{% macro utc_timestamp(column) -%}
    cast(({{ column }} at time zone 'UTC') as timestamp)
{%- endmacro %}

{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'cryptostore')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro duckdb__type_double() -%}double{%- endmacro %}

{#- Money after aggregation: wide enough for any sum of DECIMAL(20, 8) amounts. -#}
{% macro type_money() -%}decimal(38, 8){%- endmacro %}

{#- a / b for integers, truncated (both operands non-negative here). -#}
{% macro int_div(a, b) -%}
    {{ return(adapter.dispatch('int_div', 'cryptostore')(a, b)) }}
{%- endmacro %}

{% macro default__int_div(a, b) -%}
    (cast({{ a }} as bigint) / cast({{ b }} as bigint))
{%- endmacro %}

{% macro duckdb__int_div(a, b) -%}
    (cast({{ a }} as bigint) // cast({{ b }} as bigint))
{%- endmacro %}

{#- ceil(a / b) for a >= 0, b > 0, in integers (no float rounding at the bucket edges). -#}
{% macro ceil_div(a, b) -%}
    {{ cryptostore.int_div('(' ~ a ~ ') + (' ~ b ~ ') - 1', b) }}
{%- endmacro %}

{#- An exact decimal quotient rounded half away from zero to 8 places, as DECIMAL(38, 8); NULL when the
    divisor is 0 or NULL. PostgreSQL divides numerics exactly; DuckDB would return a DOUBLE, so it
    divides the amount's integer count of 1e-8 units instead. -#}
{% macro decimal_ratio(numerator, denominator) -%}
    {{ return(adapter.dispatch('decimal_ratio', 'cryptostore')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__decimal_ratio(numerator, denominator) -%}
    {#- The outer cast keeps the type's scale: PostgreSQL drops it from a CASE with a NULL branch. -#}
    cast(case when coalesce({{ denominator }}, 0) = 0 then null
         else round(cast({{ numerator }} as numeric) / {{ denominator }}, 8)
    end as {{ cryptostore.type_money() }})
{%- endmacro %}

{% macro duckdb__decimal_ratio(numerator, denominator) -%}
    case when coalesce({{ denominator }}, 0) = 0 then null
         else cast(
             sign(cast({{ numerator }} as {{ cryptostore.type_money() }})) * sign({{ denominator }})
             * ((abs(cast(cast({{ numerator }} as {{ cryptostore.type_money() }}) * 100000000 as hugeint)) * 2
                 + abs(cast({{ denominator }} as hugeint)))
                // (2 * abs(cast({{ denominator }} as hugeint))))
             * 0.00000001
         as {{ cryptostore.type_money() }})
    end
{%- endmacro %}

{#- A float ratio of two counts; NULL when the divisor is 0 or NULL (PostgreSQL would divide integers
    as integers). -#}
{% macro safe_ratio(numerator, denominator) -%}
    case when coalesce({{ denominator }}, 0) = 0 then null
         else cast({{ numerator }} as {{ cryptostore.type_double() }}) / {{ denominator }}
    end
{%- endmacro %}

{#- `n` days after a date, as a date. -#}
{% macro add_days(date_expr, n) -%}
    cast({{ date_expr }} + ({{ n }}) as date)
{%- endmacro %}

{#- The first day of a date's month, as a date. -#}
{% macro month_start(date_expr) -%}
    cast(date_trunc('month', cast({{ date_expr }} as timestamp)) as date)
{%- endmacro %}

{#- Whole calendar months from one month start to another. -#}
{% macro months_between(from_date, to_date) -%}
    cast(
        (extract(year from {{ to_date }}) - extract(year from {{ from_date }})) * 12
        + extract(month from {{ to_date }}) - extract(month from {{ from_date }})
    as integer)
{%- endmacro %}

{#- One row per day from `start_date` to `end_date` (inclusive) of the one-row relation `bounds`, as
    column `date_day`. DuckDB's series is a list to unnest, PostgreSQL's a set-returning function. -#}
{% macro day_series(bounds, start_date='start_date', end_date='end_date') -%}
    {{ return(adapter.dispatch('day_series', 'cryptostore')(bounds, start_date, end_date)) }}
{%- endmacro %}

{% macro default__day_series(bounds, start_date, end_date) -%}
    select cast(generate_series(
        cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval '1 day'
    ) as date) as date_day
    from {{ bounds }}
{%- endmacro %}

{% macro duckdb__day_series(bounds, start_date, end_date) -%}
    select cast(unnest(generate_series(
        cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval '1 day'
    )) as date) as date_day
    from {{ bounds }}
{%- endmacro %}

{#- A string key from an integer, for ids built from parts. -#}
{% macro text(expr) -%}
    cast({{ expr }} as varchar)
{%- endmacro %}

{#- A JSON array of strings under `key`, joined with `sep` (NULL when the key is absent). -#}
{% macro json_str_array_joined(column, key, sep=' ') -%}
    {{ return(adapter.dispatch('json_str_array_joined', 'cryptostore')(column, key, sep)) }}
{%- endmacro %}

{% macro default__json_str_array_joined(column, key, sep) -%}
    (select string_agg(t.term, '{{ sep }}' order by t.n)
     from jsonb_array_elements_text(cast({{ column }} as jsonb) -> '{{ key }}') with ordinality as t(term, n))
{%- endmacro %}

{% macro duckdb__json_str_array_joined(column, key, sep) -%}
    array_to_string(cast(json_extract({{ column }}, '$.{{ key }}') as varchar[]), '{{ sep }}')
{%- endmacro %}

{#- How many rows of the group satisfy `condition`, as BIGINT on both targets (DuckDB would sum to
    HUGEINT). -#}
{% macro count_where(condition) -%}
    cast(sum(case when {{ condition }} then 1 else 0 end) as bigint)
{%- endmacro %}
