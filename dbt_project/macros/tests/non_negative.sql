{#- Fails on every row whose value is below zero (NULLs pass: pair with not_null where needed). -#}
{% test non_negative(model, column_name) %}
    select {{ column_name }} as failing_value
    from {{ model }}
    where {{ column_name }} < 0
{% endtest %}
