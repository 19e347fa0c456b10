{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='partition_date',
        pre_hook="{{ delete_emptied_partitions() }}",
    )
}}
-- depends_on: {{ source('raw', 'landing_manifest') }}
-- Incremental by landing partition: a run processes only the partitions that ingest replaced
-- since the last build (batch_id greater than any already here), and delete+insert on
-- partition_date replaces those partitions whole, so reloading a day never duplicates it.
-- A partition replaced by an empty one has no rows to delete+insert with: the pre-hook
-- removes its old lines (macro delete_emptied_partitions).

with

order_lines as (

    select staged.* from {{ ref('stg_shop__order_lines') }} as staged
    {% if is_incremental() %}
        where staged.batch_id > (select coalesce(max(built.batch_id), 0) from {{ this }} as built)
    {% endif %}

),

enriched as (

    select
        order_id,
        line_number,
        ordered_at,
        ordered_date,
        customer_id,
        product_id,
        quantity,
        unit_price,
        quantity * unit_price as line_amount,
        currency,
        country,
        quantity < 0 as is_return,
        customer_id is null as is_guest,
        {{ is_non_product_code('product_id') }} as is_non_product,
        partition_date,
        batch_id

    from order_lines

)

select * from enriched
