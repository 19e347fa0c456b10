{#
    The shop's business date of a UTC timestamp: its local date in the time zone of var
    shop_timezone (setting shop.timezone, passed by shopflow.dbt). UTC stays a plain cast.
#}
{% macro local_date(column) -%}
    {%- if var('shop_timezone', 'UTC') == 'UTC' -%}
        cast({{ column }} as date)
    {%- else -%}
        cast(timezone('{{ var("shop_timezone") }}', {{ column }} at time zone 'UTC') as date)
    {%- endif -%}
{%- endmacro %}
