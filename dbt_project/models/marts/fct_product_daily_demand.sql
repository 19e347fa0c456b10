{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_stale_as_of_rows('demand_date', 'source_batch_id') }}",
    )
}}
-- depends_on: {{ ref('fct_order_lines') }}, {{ source('raw', 'landing_manifest') }}

-- Zero-filled: every product gets a row for every day from its first sale to the run date,
-- so rolling features and forecasts see the days nothing sold. Returns are kept apart from
-- sales: units_sold is what customers bought that day, units_returned what came back.
-- Incremental by business date: the pre-hook deletes the rows that may be stale (see macro
-- delete_stale_as_of_rows), and this query recomputes the days after the last remaining row
-- up to the run date. A full refresh computes every day; both give the same rows.

with

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}
    where not is_non_product

),

window_start as (

    {% if is_incremental() %}
        select
            coalesce(cast(max(demand_date) + interval 1 day as date), date '1900-01-01')
                as start_date
        from {{ this }}
    {% else %}
        select date '1900-01-01' as start_date
    {% endif %}

),

first_sales as (

    -- over all history: a product's span starts at its first sale, wherever the window starts
    select
        product_id,
        min(ordered_date) as first_sale_date
    from order_lines
    where not is_return
    group by product_id

),

daily as (

    select
        order_lines.product_id,
        order_lines.ordered_date as demand_date,
        sum(order_lines.quantity) filter (where not order_lines.is_return) as units_sold,
        -sum(order_lines.quantity) filter (where order_lines.is_return) as units_returned,
        sum(order_lines.line_amount) filter (where not order_lines.is_return) as revenue,
        -sum(order_lines.line_amount) filter (where order_lines.is_return) as returned_amount,
        count(distinct order_lines.order_id) filter (where not order_lines.is_return) as orders,
        max(order_lines.batch_id) as source_batch_id

    from order_lines
    inner join window_start on order_lines.ordered_date >= window_start.start_date
    group by order_lines.product_id, order_lines.ordered_date

),

spine as (

    select
        first_sales.product_id,
        cast(spine_days.spine_day as date) as demand_date

    from first_sales
    cross join window_start,
        lateral (
            select unnest(
                generate_series(
                    cast(
                        greatest(first_sales.first_sale_date, window_start.start_date)
                        as timestamp
                    ),
                    cast({{ run_date() }} as timestamp),
                    interval 1 day
                )
            ) as spine_day
        ) as spine_days

)

select
    spine.product_id,
    spine.demand_date,
    coalesce(daily.units_sold, 0) as units_sold,
    coalesce(daily.units_returned, 0) as units_returned,
    coalesce(daily.units_sold, 0) - coalesce(daily.units_returned, 0) as net_units,
    coalesce(daily.revenue, 0) as revenue,
    coalesce(daily.orders, 0) as orders,
    case when daily.units_sold > 0 then daily.revenue / daily.units_sold end as avg_unit_price,
    coalesce(daily.returned_amount, 0) as returned_amount,
    coalesce(daily.revenue, 0) - coalesce(daily.returned_amount, 0) as net_revenue,
    daily.source_batch_id

from spine
left join daily
    on spine.product_id = daily.product_id
        and spine.demand_date = daily.demand_date
