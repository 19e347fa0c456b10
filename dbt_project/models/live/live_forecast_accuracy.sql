{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='run_date',
        on_schema_change='append_new_columns',
    )
}}
-- Live accuracy of what was forecast at each earlier run date, once the actuals are in: one
-- row per (run_date, model_name, horizon_bucket, volume_tier, metric). model_name is the
-- forecaster ('demand_forecast', model_version = the version that served) or a baseline
-- recorded the same night ('baseline_mean_28', model_version null).
-- A horizon bucket (horizon days 1-7, 8-14, 15-21, 22-28) of a run date D is observable on
-- the night N >= D + its last horizon day (the warehouse then holds orders through every
-- forecast date of the bucket). Each night recomputes every observable bucket of the run
-- dates that gained one since the previous night evaluated (delete+insert by run_date), so N
-- nightly runs equal one full refresh.
-- Volume tier of a product at D: rank by units sold in the 28 days up to D among the products
-- forecast at D: 'high' the top 20 %, 'medium' the next 30 %, 'low' the rest; 'all' = every
-- product. Metrics as in ml/metrics.py: weekly_wape (|Σ week actual − Σ week forecast| summed
-- over products / Σ actual; a bucket is one week), bias, pinball (p10/p50/p90 averaged, over
-- Σ actual), below_p10 and above_p90 (shares of product-days). Null where Σ actual is 0.

{#- run dates that may have a bucket (its last day 7, 14, 21 or 28 days on) that became
    observable in [first night, run date]; run_dates below keeps those that do -#}
{% set first_night = live_first_night() %}
{% set batch %}
    run_date between {{ first_night }} - 28 and {{ run_date() }} - 7
{% endset %}

with

forecasts as (

    select
        run_date,
        'demand_forecast' as model_name,
        model_version,
        product_id,
        forecast_date,
        horizon_days,
        units_mean,
        units_p10,
        units_p50,
        units_p90
    from {{ prediction_rows('demand_forecast', {
        'run_date': 'date', 'model_version': 'varchar', 'product_id': 'varchar',
        'forecast_date': 'date', 'horizon_days': 'integer', 'units_mean': 'double',
        'units_p10': 'double', 'units_p50': 'double', 'units_p90': 'double'}) }}
    where {{ batch }}

    union all

    select
        run_date,
        model_name,
        cast(null as varchar) as model_version,
        product_id,
        forecast_date,
        horizon_days,
        units_mean,
        units_p10,
        units_p50,
        units_p90
    from {{ prediction_rows('baseline_forecast', {
        'run_date': 'date', 'model_name': 'varchar', 'product_id': 'varchar',
        'forecast_date': 'date', 'horizon_days': 'integer', 'units_mean': 'double',
        'units_p10': 'double', 'units_p50': 'double', 'units_p90': 'double'}) }}
    where {{ batch }}

),

bucketed as (

    select
        *,
        (horizon_days - 1) // 7 * 7 + 1 as bucket_first_day,
        (horizon_days - 1) // 7 * 7 + 7 as bucket_last_day
    from forecasts
    where run_date < {{ run_date() }}

),

run_dates as (

    -- run dates with a bucket that became observable in [first night, run date]
    select distinct run_date
    from bucketed
    where run_date + bucket_last_day between {{ first_night }} and {{ run_date() }}

),

observable as (

    select bucketed.*
    from bucketed
    inner join run_dates on bucketed.run_date = run_dates.run_date
    where bucketed.run_date + bucketed.bucket_last_day <= {{ run_date() }}

),

volume as (

    select
        products.run_date,
        products.product_id,
        coalesce(sum(demand.units_sold), 0) as units_28
    from (
        select distinct
            run_date,
            product_id
        from observable
    ) as products
    left join {{ ref('fct_product_daily_demand') }} as demand
        on products.product_id = demand.product_id
            and demand.demand_date between products.run_date - 27 and products.run_date
    group by products.run_date, products.product_id

),

tiers as (

    select
        run_date,
        product_id,
        case
            when
                row_number() over (partition by run_date order by units_28 desc, product_id asc)
                <= ceil(0.2 * count(*) over (partition by run_date))
                then 'high'
            when
                row_number() over (partition by run_date order by units_28 desc, product_id asc)
                <= ceil(0.5 * count(*) over (partition by run_date))
                then 'medium'
            else 'low'
        end as volume_tier
    from volume

),

scored as (

    select
        observable.run_date,
        observable.model_name,
        observable.model_version,
        observable.product_id,
        observable.bucket_first_day || '-' || observable.bucket_last_day as horizon_bucket,
        observable.bucket_first_day,
        tiers.volume_tier,
        coalesce(demand.units_sold, 0) as actual,
        observable.units_mean,
        (
            greatest(
                0.1 * (coalesce(demand.units_sold, 0) - observable.units_p10),
                -0.9 * (coalesce(demand.units_sold, 0) - observable.units_p10)
            )
            + greatest(
                0.5 * (coalesce(demand.units_sold, 0) - observable.units_p50),
                -0.5 * (coalesce(demand.units_sold, 0) - observable.units_p50)
            )
            + greatest(
                0.9 * (coalesce(demand.units_sold, 0) - observable.units_p90),
                -0.1 * (coalesce(demand.units_sold, 0) - observable.units_p90)
            )
        ) / 3 as pinball,
        cast(coalesce(demand.units_sold, 0) < observable.units_p10 as integer) as below_p10,
        cast(coalesce(demand.units_sold, 0) > observable.units_p90 as integer) as above_p90
    from observable
    inner join tiers
        on observable.run_date = tiers.run_date and observable.product_id = tiers.product_id
    left join {{ ref('fct_product_daily_demand') }} as demand
        on observable.product_id = demand.product_id
            and observable.forecast_date = demand.demand_date

),

per_tier as (

    select * from scored
    union all
    select * replace ('all' as volume_tier) from scored

),

weekly as (

    -- one row per product and bucket (a horizon week), in its tier and in 'all'
    select
        run_date,
        model_name,
        model_version,
        horizon_bucket,
        bucket_first_day,
        volume_tier,
        product_id,
        sum(actual) as actual,
        sum(units_mean) as forecast,
        sum(pinball) as pinball,
        sum(below_p10) as below_p10,
        sum(above_p90) as above_p90,
        count(*) as product_days
    from per_tier
    group by all

),

groups as (

    select
        run_date,
        model_name,
        model_version,
        horizon_bucket,
        bucket_first_day,
        volume_tier,
        count(*) as products,
        sum(actual) as actual_units,
        sum(forecast) as forecast_units,
        sum(abs(actual - forecast)) as abs_weekly_error,
        sum(pinball) as pinball,
        sum(below_p10) as below_p10,
        sum(above_p90) as above_p90,
        sum(product_days) as product_days
    from weekly
    group by all

),

metrics as (

    select
        *,
        'weekly_wape' as metric,
        case when actual_units > 0 then abs_weekly_error / actual_units end as value
    from groups
    union all
    select
        *,
        'bias' as metric,
        case when actual_units > 0 then (forecast_units - actual_units) / actual_units end as value
    from groups
    union all
    select
        *,
        'pinball' as metric,
        case when actual_units > 0 then pinball / actual_units end as value
    from groups
    union all
    select
        *,
        'below_p10' as metric,
        below_p10 / product_days as value
    from groups
    union all
    select
        *,
        'above_p90' as metric,
        above_p90 / product_days as value
    from groups

)

select
    run_date,
    model_name,
    model_version,
    horizon_bucket,
    volume_tier,
    metric,
    value,
    products,
    actual_units,
    {{ run_date() }} as evaluated_through
from metrics
order by run_date, model_name, bucket_first_day, volume_tier, metric
