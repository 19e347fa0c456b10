{#- Pre-hook of fct_order_lines: delete the lines of order_lines landing partitions that
    ingest replaced with an empty partition since the last build (raw.landing_manifest lists
    them with a newer batch_id but raw.order_lines has no row left to delete+insert with). -#}
{% macro delete_emptied_partitions() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where partition_date in (
            select manifest.partition_date
            from {{ source('raw', 'landing_manifest') }} as manifest
            where
                manifest.entity = 'order_lines'
                and manifest.row_count = 0
                and manifest.batch_id > (
                    select coalesce(max(built.batch_id), 0) from {{ this }} as built
                )
        )
    {%- endif -%}
{%- endmacro %}
