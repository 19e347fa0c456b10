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
-- Ranker features: one row per (cutoff_date, customer_id, product_id) for every pair the
-- customer bought in the 365 days up to the cutoff. Cutoffs are the run date and, for a
-- training build, the past cutoffs the ranker trains on (macro feature_cutoffs); each row is
-- computed from order lines dated on or before its own cutoff only. Incremental by cutoff:
-- only missing or stale cutoffs are computed (macro cutoffs_to_build).

with

cutoffs as (

    {{ cutoffs_to_build() }}

),

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}
    where customer_id is not null and not is_non_product and not is_return

),

visible as (

    select
        cutoffs.cutoff_date,
        cutoffs.source_batch_id,
        order_lines.*
    from cutoffs
    inner join order_lines
        on cutoffs.cutoff_date >= order_lines.ordered_date
            and order_lines.ordered_date > cutoffs.cutoff_date - interval 365 day

),

pair_orders as (

    select
        cutoff_date,
        customer_id,
        product_id,
        order_id,
        any_value(source_batch_id) as source_batch_id,
        min(ordered_date) as ordered_date,
        sum(quantity) as units,
        sum(line_amount) as amount

    from visible
    group by cutoff_date, customer_id, product_id, order_id

),

customer_orders as (

    select
        cutoff_date,
        customer_id,
        count(distinct order_id) as customer_orders_365,
        datediff('day', max(ordered_date), cutoff_date) as customer_recency_days

    from visible
    group by cutoff_date, customer_id

),

pairs as (

    select
        cutoff_date,
        customer_id,
        product_id,
        any_value(source_batch_id) as source_batch_id,
        count(*) as pair_orders,
        sum(units) as pair_units,
        sum(amount) as pair_amount,
        datediff('day', max(ordered_date), cutoff_date) as pair_recency_days,
        datediff('day', min(ordered_date), cutoff_date) as pair_first_age_days,
        sum(exp(-datediff('day', ordered_date, cutoff_date) / 270.0)) as pair_recency_weighted,
        count(*) filter (where ordered_date > cutoff_date - interval 90 day) as pair_orders_90,
        count(*) filter (where ordered_date > cutoff_date - interval 30 day) as pair_orders_30,
        -- mean days between the pair's orders; null with a single order
        datediff('day', min(ordered_date), max(ordered_date))
        / nullif(count(*) - 1, 0) as pair_mean_gap_days

    from pair_orders
    group by cutoff_date, customer_id, product_id

)

select
    pairs.*,
    customer_orders.customer_orders_365,
    customer_orders.customer_recency_days

from pairs
inner join customer_orders
    on pairs.cutoff_date = customer_orders.cutoff_date
        and pairs.customer_id = customer_orders.customer_id
