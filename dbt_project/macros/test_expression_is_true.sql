{#- Generic test: every row satisfies a boolean SQL expression (dbt_utils is not installed). -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
