-- "The limit": the nightly marts computed by one hand-written DuckDB script, no orchestration,
-- no tests, no incremental bookkeeping. Reads the raw.* tables Shopflow's ingest wrote and
-- builds the same tables as the dbt marts (same definitions), as of $RUN_DATE.
-- bench/run.py substitutes $RUN_DATE and runs it in one connection.

create schema if not exists lim;

create or replace table lim.fct_order_lines as
select
    order_id, line_number, ordered_at, cast(ordered_at as date) as ordered_date, customer_id,
    product_id, quantity, cast(unit_price as double) as unit_price,
    quantity * cast(unit_price as double) as line_amount, currency, country,
    quantity < 0 as is_return, customer_id is null as is_guest,
    (coalesce(upper(trim(product_id)), '') = '' or (regexp_full_match(upper(trim(product_id)),
        '^([A-Z ]+|C[0-9]+|ADJUST[0-9]*|TEST[0-9]+|GIFT_[0-9]+_[0-9]+)$')
        and not starts_with(upper(trim(product_id)), 'DCGS'))) as is_non_product
from raw.order_lines
where cast(ordered_at as date) <= date '$RUN_DATE';

create or replace table lim.fct_orders as
select order_id, any_value(customer_id) as customer_id, min(ordered_at) as ordered_at,
       min(ordered_date) as ordered_date, count(*) as line_count, sum(quantity) as net_units,
       sum(line_amount) as net_amount, bool_and(is_return) as is_return_order
from lim.fct_order_lines group by order_id;

create or replace table lim.dim_products as
select product_id,
       min(ordered_date) filter (where not is_return) as first_sold_date,
       max(ordered_date) filter (where not is_return) as last_sold_date,
       sum(quantity) filter (where not is_return) as units_sold,
       avg(unit_price) filter (where not is_return and unit_price > 0) as avg_unit_price,
       bool_or(is_non_product) as is_non_product
from lim.fct_order_lines group by product_id;

create or replace table lim.dim_customers as
select customer_id, min(ordered_date) as first_order_date,
       max(ordered_date) filter (where not is_return_order) as last_order_date,
       count(*) filter (where not is_return_order) as order_count,
       sum(net_amount) as monetary_net
from lim.fct_orders where customer_id is not null group by customer_id;

create or replace table lim.fct_product_daily_demand as
with daily as (
    select product_id, ordered_date as demand_date,
           coalesce(sum(quantity) filter (where not is_return), 0) as units_sold,
           coalesce(-sum(quantity) filter (where is_return), 0) as units_returned,
           coalesce(sum(line_amount) filter (where not is_return), 0) as revenue
    from lim.fct_order_lines where not is_non_product group by all
),
span as (
    select product_id, min(demand_date) as first_date from daily where units_sold > 0 group by all
),
spine as (
    select product_id, cast(unnest(generate_series(cast(first_date as timestamp),
           timestamp '$RUN_DATE', interval 1 day)) as date) as demand_date
    from span
)
select spine.product_id, spine.demand_date, coalesce(units_sold, 0) as units_sold,
       coalesce(units_returned, 0) as units_returned,
       coalesce(units_sold, 0) - coalesce(units_returned, 0) as net_units,
       coalesce(revenue, 0) as revenue
from spine left join daily using (product_id, demand_date);

create or replace table lim.fct_customer_product_interactions as
select customer_id, product_id,
       min(ordered_date) filter (where not is_return) as first_ordered_date,
       max(ordered_date) filter (where not is_return) as last_ordered_date,
       count(distinct order_id) filter (where not is_return) as order_count,
       coalesce(sum(quantity) filter (where not is_return), 0) as units_bought,
       sum(line_amount) as net_amount
from lim.fct_order_lines
where customer_id is not null and not is_non_product
group by all having count(*) filter (where not is_return) > 0;

create or replace table lim.feat_product_daily as
select product_id, demand_date, units_sold,
       avg(units_sold) over (w rows between 6 preceding and current row) as mean_7,
       avg(units_sold) over (w rows between 27 preceding and current row) as mean_28,
       avg(units_sold) over (w rows between 90 preceding and current row) as mean_91,
       stddev_pop(units_sold) over (w rows between 27 preceding and current row) as std_28,
       lag(units_sold, 6) over w as lag_7, lag(units_sold, 27) over w as lag_28
from lim.fct_product_daily_demand
window w as (partition by product_id order by demand_date);
