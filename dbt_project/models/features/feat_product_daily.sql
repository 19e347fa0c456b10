-- Forecaster features: one row per product per day, describing the product at the END of that
-- day. Every window looks backwards only (rows ... preceding and current row) over the
-- zero-filled daily demand, so the row for day t never sees a sale after t: a model trained on
-- the rows at past origins and scored on the row at the run date sees the same definitions.

with

demand as (

    select * from {{ ref('fct_product_daily_demand') }}

),

products as (

    select
        product_id,
        coalesce(category, 'unknown') as category
    from {{ ref('dim_products') }}

),

demand_with_category as (

    select
        demand.*,
        products.category
    from demand
    inner join products on demand.product_id = products.product_id

),

category_daily as (

    select
        category,
        demand_date,
        avg(units_sold) as category_units_per_product

    from demand_with_category
    group by category, demand_date

),

category_rolling as (

    select
        category,
        demand_date,
        avg(category_units_per_product) over (
            partition by category order by demand_date
            rows between 27 preceding and current row
        ) as category_mean_28

    from category_daily

),

product_windows as (

    select
        product_id,
        category,
        demand_date,
        units_sold,
        units_returned,
        lag(units_sold, 6) over w as lag_7,
        lag(units_sold, 13) over w as lag_14,
        lag(units_sold, 27) over w as lag_28,
        avg(units_sold) over (w rows between 6 preceding and current row) as mean_7,
        avg(units_sold) over (w rows between 27 preceding and current row) as mean_28,
        avg(units_sold) over (w rows between 90 preceding and current row) as mean_91,
        stddev_pop(units_sold) over (w rows between 27 preceding and current row) as std_28,
        max(units_sold) over (w rows between 27 preceding and current row) as max_28,
        count(*) filter (where units_sold > 0) over (
            w rows between 27 preceding and current row
        ) as sale_days_28,
        sum(units_returned) over (w rows between 27 preceding and current row) as returned_28,
        row_number() over w - 1 as product_age_days,
        max(case when units_sold > 0 then demand_date end) over (
            w rows between unbounded preceding and current row
        ) as last_sale_date,
        last_value(avg_unit_price ignore nulls) over (
            w rows between unbounded preceding and current row
        ) as last_price,
        avg(avg_unit_price) over (w rows between 90 preceding and current row) as mean_price_91

    from demand_with_category
    window w as (partition by product_id order by demand_date)

)

select
    product_windows.product_id,
    product_windows.demand_date,
    product_windows.category,
    product_windows.units_sold,
    coalesce(product_windows.lag_7, 0) as lag_7,
    coalesce(product_windows.lag_14, 0) as lag_14,
    coalesce(product_windows.lag_28, 0) as lag_28,
    product_windows.mean_7,
    product_windows.mean_28,
    product_windows.mean_91,
    coalesce(product_windows.std_28, 0) as std_28,
    product_windows.max_28,
    product_windows.sale_days_28,
    product_windows.returned_28,
    product_windows.product_age_days,
    datediff('day', product_windows.last_sale_date, product_windows.demand_date)
        as days_since_last_sale,
    product_windows.last_price,
    case
        when product_windows.mean_price_91 > 0
            then product_windows.last_price / product_windows.mean_price_91
        else 1.0
    end as price_ratio_91,
    category_rolling.category_mean_28

from product_windows
left join category_rolling
    on product_windows.category = category_rolling.category
        and product_windows.demand_date = category_rolling.demand_date
