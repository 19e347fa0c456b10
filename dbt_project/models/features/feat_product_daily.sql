{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_stale_as_of_rows('demand_date', 'source_batch_id') }}",
    )
}}
-- depends_on: {{ ref('fct_order_lines') }}, {{ source('raw', 'landing_manifest') }}

-- Forecaster features: one row per product per day, describing the product at the END of that
-- day. Every window looks backwards only (rows ... preceding and current row) over the
-- zero-filled daily demand, so the row for day t never sees a sale after t: a model trained on
-- the rows at past origins and scored on the row at the run date sees the same definitions.
--
-- Wholesale demand is lumpy: one customer's one-off order can be a month of normal sales.
-- Besides plain means, the model therefore gets robust level signals (the 28-day mean without
-- its largest day, the largest single order), how many customers and orders carry the demand,
-- and the level of the product's family (stock-code stem: colour/size variants share it).
--
-- Incremental by business date, like fct_product_daily_demand: the pre-hook deletes the rows
-- that may be stale, and this query recomputes the days after the last remaining row. Every
-- window reaches at most 181 rows (days: the demand spine is dense) back, so the days from
-- 181 before the first recomputed one are read; the three features that look back without
-- bound (product age, last sale date, last price) take what lies before that from
-- `history_before`. A full refresh computes every day; both give the same rows.

with

computed_from as (

    {% if is_incremental() %}
        select
            coalesce(cast(max(demand_date) + interval 1 day as date), date '1900-01-01')
                as start_date
        from {{ this }}
    {% else %}
        select date '1900-01-01' as start_date
    {% endif %}

),

read_from as (

    select cast(start_date - interval 181 day as date) as start_date from computed_from

),

all_demand as (

    select * from {{ ref('fct_product_daily_demand') }}

),

demand as (

    select all_demand.*
    from all_demand
    inner join read_from on all_demand.demand_date >= read_from.start_date

),

history_before as (

    -- per product, what lies before the rows read: first day, last sale day, last price
    select
        all_demand.product_id,
        min(all_demand.demand_date) as first_demand_date,
        max(all_demand.demand_date) filter (
            where all_demand.units_sold > 0 and all_demand.demand_date < read_from.start_date
        ) as last_sale_date_before,
        arg_max(all_demand.avg_unit_price, all_demand.demand_date) filter (
            where all_demand.avg_unit_price is not null
            and all_demand.demand_date < read_from.start_date
        ) as last_price_before
    from all_demand
    cross join read_from
    group by all_demand.product_id

),

products as (

    select
        product_id,
        coalesce(category, 'unknown') as category,
        -- variants of one design share the stock-code stem (85123A, 85123B -> 85123)
        coalesce(nullif(regexp_replace(product_id, '[A-Za-z]+$', ''), ''), product_id)
            as product_family
    from {{ ref('dim_products') }}

),

order_units as (

    select
        product_id,
        ordered_date as demand_date,
        order_id,
        customer_id,
        sum(quantity) as units
    from {{ ref('int_order_lines_as_of') }}
    where
        not is_non_product and not is_return
        and ordered_date >= (select read_from.start_date from read_from)
    group by product_id, ordered_date, order_id, customer_id

),

order_stats as (

    select
        product_id,
        demand_date,
        count(distinct customer_id) as customers,
        max(units) as largest_order_units
    from order_units
    group by product_id, demand_date

),

demand_with_category as (

    select
        demand.*,
        products.category,
        products.product_family,
        coalesce(order_stats.customers, 0) as customers,
        coalesce(order_stats.largest_order_units, 0) as largest_order_units
    from demand
    inner join products on demand.product_id = products.product_id
    left join order_stats
        on
            demand.product_id = order_stats.product_id
            and demand.demand_date = order_stats.demand_date

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
        ) as category_mean_28,
        avg(category_units_per_product) over (
            partition by category order by demand_date
            rows between 6 preceding and current row
        ) as category_mean_7

    from category_daily

),

product_windows as (

    select
        product_id,
        category,
        product_family,
        demand_date,
        units_sold,
        units_returned,
        source_batch_id,
        lag(units_sold, 6) over w as lag_7,
        lag(units_sold, 13) over w as lag_14,
        lag(units_sold, 27) over w as lag_28,
        avg(units_sold) over (w rows between 6 preceding and current row) as mean_7,
        avg(units_sold) over (w rows between 27 preceding and current row) as mean_28,
        avg(units_sold) over (w rows between 90 preceding and current row) as mean_91,
        avg(units_sold) over (w rows between 181 preceding and current row) as mean_182,
        sum(units_sold) over (w rows between 27 preceding and current row) as sum_28,
        count(*) over (w rows between 27 preceding and current row) as days_28,
        stddev_pop(units_sold) over (w rows between 27 preceding and current row) as std_28,
        max(units_sold) over (w rows between 27 preceding and current row) as max_28,
        count(*) filter (where units_sold > 0) over (
            w rows between 27 preceding and current row
        ) as sale_days_28,
        count(*) filter (where units_sold > 0) over (
            w rows between 90 preceding and current row
        ) as sale_days_91,
        sum(units_returned) over (w rows between 27 preceding and current row) as returned_28,
        sum(orders) over (w rows between 27 preceding and current row) as orders_28,
        sum(orders) over (w rows between 90 preceding and current row) as orders_91,
        sum(units_sold) over (w rows between 90 preceding and current row) as sum_91,
        sum(customers) over (w rows between 27 preceding and current row) as customer_days_28,
        max(largest_order_units) over (
            w rows between 27 preceding and current row
        ) as largest_order_28,
        max(case when units_sold > 0 then demand_date end) over (
            w rows between unbounded preceding and current row
        ) as last_sale_date_read,
        last_value(avg_unit_price ignore nulls) over (
            w rows between unbounded preceding and current row
        ) as last_price_read,
        avg(avg_unit_price) over (w rows between 27 preceding and current row) as mean_price_28,
        avg(avg_unit_price) over (w rows between 90 preceding and current row) as mean_price_91

    from demand_with_category
    window w as (partition by product_id order by demand_date)

),

product_features as (

    select
        product_windows.*,
        -- the 28-day mean without its largest day: a one-off wholesale order does not lift it
        (product_windows.sum_28 - product_windows.max_28)
        / greatest(product_windows.days_28 - 1, 1) as mean_28_trimmed,
        datediff('day', history_before.first_demand_date, product_windows.demand_date)
            as product_age_days,
        coalesce(product_windows.last_sale_date_read, history_before.last_sale_date_before)
            as last_sale_date,
        coalesce(product_windows.last_price_read, history_before.last_price_before)
            as last_price
    from product_windows
    inner join history_before on product_windows.product_id = history_before.product_id
    where product_windows.demand_date >= (select computed_from.start_date from computed_from)

)

select
    product_features.product_id,
    product_features.demand_date,
    product_features.category,
    product_features.units_sold,
    coalesce(product_features.lag_7, 0) as lag_7,
    coalesce(product_features.lag_14, 0) as lag_14,
    coalesce(product_features.lag_28, 0) as lag_28,
    product_features.mean_7,
    product_features.mean_28,
    product_features.mean_91,
    coalesce(product_features.std_28, 0) as std_28,
    product_features.max_28,
    product_features.sale_days_28,
    product_features.returned_28,
    product_features.product_age_days,
    datediff('day', product_features.last_sale_date, product_features.demand_date)
        as days_since_last_sale,
    product_features.last_price,
    case
        when product_features.mean_price_91 > 0
            then product_features.last_price / product_features.mean_price_91
        else 1.0
    end as price_ratio_91,
    category_rolling.category_mean_28,
    product_features.product_family,
    product_features.mean_182,
    product_features.mean_28_trimmed,
    product_features.sale_days_91,
    product_features.orders_28,
    product_features.customer_days_28,
    product_features.largest_order_28,
    case
        when product_features.orders_91 > 0
            then product_features.sum_91 / product_features.orders_91
        else 0.0
    end as units_per_order_91,
    case
        when product_features.mean_price_28 > 0
            then product_features.last_price / product_features.mean_price_28
        else 1.0
    end as price_ratio_28,
    case
        when category_rolling.category_mean_28 > 0
            then category_rolling.category_mean_7 / category_rolling.category_mean_28
        else 1.0
    end as category_trend_7_28,
    avg(product_features.mean_28_trimmed) over (
        partition by product_features.product_family, product_features.demand_date
    ) as family_mean_28_trimmed,
    count(*) over (
        partition by product_features.product_family, product_features.demand_date
    ) as family_products,
    -- the ingest batch the day's lines came from (the watermark of delete_stale_as_of_rows)
    product_features.source_batch_id

from product_features
left join category_rolling
    on product_features.category = category_rolling.category
        and product_features.demand_date = category_rolling.demand_date
