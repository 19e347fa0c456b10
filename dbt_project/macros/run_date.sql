{#- The run's business date as a DATE literal. -#}
{% macro run_date() -%}
    cast('{{ var("run_date") }}' as date)
{%- endmacro %}
