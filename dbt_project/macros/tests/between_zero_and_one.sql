{#- Fails on every row whose rate lies outside [0, 1] (NULLs pass: a rate over nothing is NULL). -#}
{% test between_zero_and_one(model, column_name) %}
    select {{ column_name }} as failing_value
    from {{ model }}
    where {{ column_name }} < 0 or {{ column_name }} > 1
{% endtest %}
