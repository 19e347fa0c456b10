{#- Pre-hook of incremental models by business date (fct_product_daily_demand): such a
    model holds exactly what a full refresh as of the last run date would hold. Before a run
    for D adds rows, this deletes every row from the earliest date that may be stale:

    - the day after the last built date (new dates: nothing stale),
    - the day after D (a backfill of an older date: no row after D may remain downstream),
    - the date of every order_lines landing partition replaced since the rows were built,
      including a partition replaced by an empty one (raw.landing_manifest),
    - the ordered date of every order line loaded since,
    - the ordered date of every line whose partition turns visible or invisible because D
      differs from the last built date (partitions dated between the two).

    "Since the rows were built" = in ingest batches above the highest batch_id the rows were
    computed from (watermark_column; deterministic, so a full refresh computes the same one).
    The model then recomputes from the day after its last remaining row up to D. Recomputing
    is always correct, so every rule errs on the early side. It relies on lines being dated on
    their partition's date (the landing gate quarantines the others); after a manual change
    to raw, run `dbt build --full-refresh`. A table built by a version without the watermark
    column is emptied and rebuilt whole. -#}
{% macro delete_stale_as_of_rows(date_column, watermark_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ date_column }} >= ({{ stale_from_date(date_column, watermark_column) }})
    {%- endif -%}
{%- endmacro %}


{#- The earliest date delete_stale_as_of_rows deletes from (a scalar subquery). -#}
{% macro stale_from_date(date_column, watermark_column) %}
    {#- adapter is undefined only when sqlfluff renders the SQL to lint it -#}
    {%- if adapter is defined -%}
        {%- set built_columns = adapter.get_columns_in_relation(this)
            | map(attribute='name') | list -%}
    {%- else -%}
        {%- set built_columns = [watermark_column] -%}
    {%- endif -%}
    {%- if watermark_column not in built_columns %}
        select date '1900-01-01'
    {%- else %}
    with

    built as (

        select
            max({{ date_column }}) as built_through,
            coalesce(max({{ watermark_column }}), 0) as watermark
        from {{ this }}

    ),

    replaced_partitions as (

        select min(manifest.partition_date) as first_date
        from {{ source('raw', 'landing_manifest') }} as manifest, built
        where
            manifest.entity = 'order_lines'
            and manifest.batch_id > built.watermark
            and manifest.partition_date <= {{ run_date() }}

    ),

    loaded_lines as (

        select min(order_lines.ordered_date) as first_date
        from {{ ref('fct_order_lines') }} as order_lines, built
        where
            order_lines.batch_id > built.watermark
            and order_lines.partition_date <= {{ run_date() }}

    ),

    visibility_changed as (

        select min(order_lines.ordered_date) as first_date
        from {{ ref('fct_order_lines') }} as order_lines, built
        where
            order_lines.partition_date > least(built.built_through, {{ run_date() }})
            and order_lines.partition_date <= greatest(built.built_through, {{ run_date() }})

    )

    select
        cast(least(
            built.built_through + interval 1 day,
            {{ run_date() }} + interval 1 day,
            replaced_partitions.first_date,
            loaded_lines.first_date,
            visibility_changed.first_date
        ) as date)
    from built, replaced_partitions, loaded_lines, visibility_changed
    {%- endif %}
{% endmacro %}
