{#- A table of the warehouse's predictions schema (written by the nightly's scoring steps, not
    by dbt), or no rows with the given columns where it does not exist yet (the first build of
    a warehouse, before anything was scored). -#}
{% macro prediction_rows(table, columns) -%}
    {#- no adapter when sqlfluff renders the model: lint the empty branch -#}
    {%- set relation = adapter.get_relation(
        database=this.database, schema='predictions', identifier=table
    ) if adapter is defined else none -%}
    {%- if relation is not none -%}
        {{ relation }}
    {%- else -%}
        (
            select
        {%- for name, type in columns.items() %}
                    cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
            where false
        )
    {%- endif -%}
{%- endmacro %}

{#- The first night whose evaluation this incremental run (re)computes, as a DATE literal: the
    night after the latest one evaluated before this run date, so a rerun of a night recomputes
    that night's rows and a skipped night is caught up; a full refresh evaluates everything.
    A literal (one query at compile time), so that the live models' filters on run_date skip
    the predictions of older run dates by their zone maps instead of scanning them all. -#}
{% macro live_first_night() -%}
    {%- if execute is defined and execute and is_incremental() -%}
        {%- set found = run_query(
            "select coalesce(max(evaluated_through) + 1, date '1900-01-01') from "
            ~ this ~ " where evaluated_through < " ~ run_date()
        ) -%}
        cast('{{ found.columns[0].values()[0] }}' as date)
    {%- else -%}
        cast('1900-01-01' as date)
    {%- endif -%}
{%- endmacro %}
