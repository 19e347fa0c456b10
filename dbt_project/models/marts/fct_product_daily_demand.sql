-- Zero-filled: every product gets a row for every day from its first sale to the run date,
-- so rolling features and forecasts see the days nothing sold. Returns are kept apart from
-- sales: units_sold is what customers bought that day, units_returned what came back.

with

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}
    where not is_non_product

),

daily as (

    select
        product_id,
        ordered_date as demand_date,
        sum(quantity) filter (where not is_return) as units_sold,
        -sum(quantity) filter (where is_return) as units_returned,
        sum(line_amount) filter (where not is_return) as revenue,
        count(distinct order_id) filter (where not is_return) as orders

    from order_lines
    group by product_id, ordered_date

),

product_span as (

    select
        product_id,
        min(demand_date) as first_date
    from daily
    where units_sold > 0
    group by product_id

),

spine as (

    select
        product_span.product_id,
        cast(spine_days.spine_day as date) as demand_date

    from product_span,
        lateral (
            select unnest(
                generate_series(
                    cast(product_span.first_date as timestamp),
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
    case when daily.units_sold > 0 then daily.revenue / daily.units_sold end as avg_unit_price

from spine
left join daily
    on spine.product_id = daily.product_id
        and spine.demand_date = daily.demand_date
