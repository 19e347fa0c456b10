{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='cutoff_date',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_other_cutoffs() }}",
    )
}}
-- depends_on: {{ ref('fct_order_lines') }}, {{ source('raw', 'landing_manifest') }}
-- Product popularity at each feature cutoff (see feat_customer_product): one row per
-- (cutoff_date, product_id) for products sold in the 365 days up to the cutoff. Incremental by
-- cutoff like feat_customer_product.

with

cutoffs as (

    {{ cutoffs_to_build() }}

),

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}
    where not is_non_product and not is_return

)

select
    cutoffs.cutoff_date,
    order_lines.product_id,
    count(distinct order_lines.customer_id) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 30 day
    ) as buyers_30,
    coalesce(sum(order_lines.quantity) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 30 day
    ), 0) as units_30,
    count(distinct order_lines.order_id) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 30 day
    ) as orders_30,
    count(distinct order_lines.order_id) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 7 day
    ) as orders_7,
    count(distinct order_lines.order_id) as orders_365,
    count(distinct order_lines.customer_id) as buyers_365,
    median(order_lines.unit_price) as median_price_365,
    any_value(cutoffs.source_batch_id) as source_batch_id

from cutoffs
inner join order_lines
    on cutoffs.cutoff_date >= order_lines.ordered_date
        and order_lines.ordered_date > cutoffs.cutoff_date - interval 365 day
group by cutoffs.cutoff_date, order_lines.product_id
