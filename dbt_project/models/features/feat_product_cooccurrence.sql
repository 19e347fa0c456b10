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
-- Basket co-occurrence ("bought together"): one row per (cutoff_date, product_id,
-- related_product_id) for the var cooccurrence_neighbours products most often in the same order
-- as product_id, counted over the orders of the 365 days up to each feature cutoff (see
-- feat_customer_product). Orders with more than var cooccurrence_max_order_products distinct
-- products are left out: a bulk order pairs everything with everything and says little.

with

cutoffs as (

    {{ cutoffs_to_build() }}

),

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}
    where not is_non_product and not is_return

),

order_products as (

    select distinct
        cutoffs.cutoff_date,
        order_lines.order_id,
        order_lines.product_id
    from cutoffs
    inner join order_lines
        on cutoffs.cutoff_date >= order_lines.ordered_date
            and order_lines.ordered_date > cutoffs.cutoff_date - interval 365 day

),

basket_orders as (

    select
        cutoff_date,
        order_id,
        product_id
    from order_products
    qualify
        count(*) over (partition by cutoff_date, order_id)
        between 2 and {{ var('cooccurrence_max_order_products') }}

),

product_orders as (

    select
        cutoff_date,
        product_id,
        count(*) as product_orders
    from basket_orders
    group by cutoff_date, product_id

),

pair_counts as (

    select
        left_side.cutoff_date,
        left_side.product_id,
        right_side.product_id as related_product_id,
        count(*) as co_orders
    from basket_orders as left_side
    inner join basket_orders as right_side
        on left_side.cutoff_date = right_side.cutoff_date
            and left_side.order_id = right_side.order_id
            and left_side.product_id != right_side.product_id
    group by left_side.cutoff_date, left_side.product_id, right_side.product_id

)

select
    pair_counts.cutoff_date,
    pair_counts.product_id,
    pair_counts.related_product_id,
    pair_counts.co_orders,
    product_side.product_orders,
    related_side.product_orders as related_orders,
    pair_counts.co_orders / product_side.product_orders as confidence,
    pair_counts.co_orders
    / sqrt(product_side.product_orders * related_side.product_orders) as cosine,
    cutoffs.source_batch_id
from pair_counts
inner join cutoffs on pair_counts.cutoff_date = cutoffs.cutoff_date
inner join product_orders as product_side
    on pair_counts.cutoff_date = product_side.cutoff_date
        and pair_counts.product_id = product_side.product_id
inner join product_orders as related_side
    on pair_counts.cutoff_date = related_side.cutoff_date
        and pair_counts.related_product_id = related_side.product_id
qualify
    row_number() over (
        partition by pair_counts.cutoff_date, pair_counts.product_id
        order by pair_counts.co_orders desc, pair_counts.related_product_id asc
    ) <= {{ var('cooccurrence_neighbours') }}
