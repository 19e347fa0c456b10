-- "The limit": every table the nightly `dbt build` materialises, computed by one hand-written
-- DuckDB script: no orchestration, no tests, no incremental bookkeeping, everything in full.
-- Reads the raw.* tables Shopflow's ingest wrote and builds the marts and the features with
-- the definitions of dbt_project/models (the per-cutoff features at the scoring cutoff, the
-- run date, as the nightly run builds them) into schema lim, one table per dbt model.
-- bench/stage.py substitutes $RUN_DATE and the dbt_project.yml vars $COOCCURRENCE_NEIGHBOURS
-- and $COOCCURRENCE_MAX_ORDER_PRODUCTS, and runs it in one connection.

create schema if not exists lim;

-- Every line ingest loaded for a run up to the run date (ingest never reads later partitions,
-- so this is fct_order_lines as the night of the run date left it, whatever came later).
create or replace table lim.fct_order_lines as
select
    order_id, line_number, ordered_at, cast(ordered_at as date) as ordered_date, customer_id,
    product_id, quantity, cast(unit_price as double) as unit_price,
    quantity * cast(unit_price as double) as line_amount, currency, country,
    quantity < 0 as is_return, customer_id is null as is_guest,
    (coalesce(upper(trim(product_id)), '') = '' or (regexp_full_match(upper(trim(product_id)),
        '^([A-Z ]+|C[0-9]+|ADJUST[0-9]*|TEST[0-9]+|GIFT_[0-9]+_[0-9]+)$')
        and not starts_with(upper(trim(product_id)), 'DCGS'))) as is_non_product,
    _partition_date as partition_date, _batch_id as batch_id
from raw.order_lines
where _partition_date <= date '$RUN_DATE';

create or replace temp view as_of as
select * from lim.fct_order_lines where ordered_date <= date '$RUN_DATE';

create or replace temp view products_latest as
select product_id, name as product_name, category, cast(list_price as double) as list_price,
       first_available_at
from raw.products
where _partition_date <= date '$RUN_DATE'
qualify row_number() over (
    partition by product_id order by _partition_date desc, first_available_at desc) = 1;

create or replace temp view customers_latest as
select customer_id, created_at, country
from raw.customers
where _partition_date <= date '$RUN_DATE'
qualify row_number() over (partition by customer_id order by _partition_date desc) = 1;

-- marts ------------------------------------------------------------------------------------

create or replace table lim.fct_orders as
select order_id, any_value(customer_id) as customer_id, min(ordered_at) as ordered_at,
       min(ordered_date) as ordered_date, any_value(country) as country,
       count(*) as line_count, sum(quantity) as net_units, sum(line_amount) as net_amount,
       bool_and(is_return) as is_return_order
from as_of group by order_id;

create or replace table lim.dim_products as
with sales as (
    select product_id,
           min(ordered_date) filter (where not is_return) as first_sold_date,
           max(ordered_date) filter (where not is_return) as last_sold_date,
           sum(quantity) filter (where not is_return) as units_sold,
           -sum(quantity) filter (where is_return) as units_returned,
           avg(unit_price) filter (where not is_return and unit_price > 0) as avg_unit_price,
           min(unit_price) filter (where not is_return and unit_price > 0) as min_unit_price,
           max(unit_price) filter (where not is_return and unit_price > 0) as max_unit_price,
           arg_max(unit_price, ordered_at) filter (where not is_return and unit_price > 0)
               as last_unit_price
    from as_of group by product_id
),
joined as (
    select ids.product_id,
           coalesce(shop.product_name, ids.product_id) as product_name, shop.category,
           coalesce(shop.list_price, sales.last_unit_price) as list_price,
           coalesce(shop.first_available_at, cast(sales.first_sold_date as timestamp))
               as first_available_at,
           sales.first_sold_date, sales.last_sold_date,
           coalesce(sales.units_sold, 0) as units_sold,
           coalesce(sales.units_returned, 0) as units_returned,
           sales.avg_unit_price, sales.min_unit_price, sales.max_unit_price,
           (coalesce(upper(trim(ids.product_id)), '') = '' or (regexp_full_match(
               upper(trim(ids.product_id)),
               '^([A-Z ]+|C[0-9]+|ADJUST[0-9]*|TEST[0-9]+|GIFT_[0-9]+_[0-9]+)$')
               and not starts_with(upper(trim(ids.product_id)), 'DCGS'))) as is_non_product
    from (select product_id from sales union select product_id from products_latest) as ids
    left join products_latest as shop on ids.product_id = shop.product_id
    left join sales on ids.product_id = sales.product_id
)
select *,
       (not is_non_product
        and first_available_at <= date '$RUN_DATE' + interval 1 day
        and coalesce(last_sold_date, cast(first_available_at as date))
            >= date '$RUN_DATE' - interval 90 day) as is_sellable
from joined;

create or replace table lim.dim_customers as
with stats as (
    select customer_id, min(ordered_date) as first_order_date,
           max(ordered_date) filter (where not is_return_order) as last_order_date,
           count(*) filter (where not is_return_order) as order_count,
           sum(net_amount) as monetary_net, arg_max(country, ordered_at) as last_order_country
    from lim.fct_orders where customer_id is not null group by customer_id
)
select ids.customer_id, coalesce(shop.country, stats.last_order_country) as country,
       coalesce(shop.created_at, cast(stats.first_order_date as timestamp)) as created_at,
       stats.first_order_date, stats.last_order_date,
       coalesce(stats.order_count, 0) as order_count,
       coalesce(stats.monetary_net, 0) as monetary_net,
       datediff('day', stats.last_order_date, date '$RUN_DATE') as recency_days,
       stats.last_order_date >= date '$RUN_DATE' - interval 90 day as is_active
from (select customer_id from stats union select customer_id from customers_latest) as ids
left join customers_latest as shop on ids.customer_id = shop.customer_id
left join stats on ids.customer_id = stats.customer_id;

-- one row per merchandise product and day from its first sale to the run date, zero-filled
create or replace table lim.fct_product_daily_demand as
with merch as (select * from as_of where not is_non_product),
daily as (
    select product_id, ordered_date as demand_date,
           sum(quantity) filter (where not is_return) as units_sold,
           -sum(quantity) filter (where is_return) as units_returned,
           sum(line_amount) filter (where not is_return) as revenue,
           -sum(line_amount) filter (where is_return) as returned_amount,
           count(distinct order_id) filter (where not is_return) as orders,
           max(batch_id) as source_batch_id
    from merch group by product_id, ordered_date
),
spine as (
    select product_id, cast(unnest(generate_series(cast(min(ordered_date) as timestamp),
           timestamp '$RUN_DATE', interval 1 day)) as date) as demand_date
    from merch where not is_return group by product_id
)
select spine.product_id, spine.demand_date,
       coalesce(daily.units_sold, 0) as units_sold,
       coalesce(daily.units_returned, 0) as units_returned,
       coalesce(daily.units_sold, 0) - coalesce(daily.units_returned, 0) as net_units,
       coalesce(daily.revenue, 0) as revenue, coalesce(daily.orders, 0) as orders,
       case when daily.units_sold > 0 then daily.revenue / daily.units_sold end
           as avg_unit_price,
       coalesce(daily.returned_amount, 0) as returned_amount,
       coalesce(daily.revenue, 0) - coalesce(daily.returned_amount, 0) as net_revenue,
       daily.source_batch_id
from spine left join daily
    on spine.product_id = daily.product_id and spine.demand_date = daily.demand_date;

create or replace table lim.fct_customer_product_interactions as
select customer_id, product_id,
       min(ordered_date) filter (where not is_return) as first_ordered_date,
       max(ordered_date) filter (where not is_return) as last_ordered_date,
       count(distinct order_id) filter (where not is_return) as order_count,
       coalesce(sum(quantity) filter (where not is_return), 0) as units_bought,
       coalesce(-sum(quantity) filter (where is_return), 0) as units_returned,
       sum(line_amount) as net_amount
from as_of
where customer_id is not null and not is_non_product
group by customer_id, product_id
having count(*) filter (where not is_return) > 0;

-- features: the forecaster's product days --------------------------------------------------

create or replace table lim.feat_product_daily as
with products as (
    select product_id, coalesce(category, 'unknown') as category,
           coalesce(nullif(regexp_replace(product_id, '[A-Za-z]+$', ''), ''), product_id)
               as product_family
    from lim.dim_products
),
order_stats as (
    select product_id, demand_date, count(distinct customer_id) as customers,
           max(units) as largest_order_units
    from (
        select product_id, ordered_date as demand_date, order_id, customer_id,
               sum(quantity) as units
        from as_of where not is_non_product and not is_return
        group by product_id, ordered_date, order_id, customer_id
    ) group by product_id, demand_date
),
demand as (
    select daily.*, products.category, products.product_family,
           coalesce(order_stats.customers, 0) as customers,
           coalesce(order_stats.largest_order_units, 0) as largest_order_units
    from lim.fct_product_daily_demand as daily
    inner join products on daily.product_id = products.product_id
    left join order_stats
        on daily.product_id = order_stats.product_id
        and daily.demand_date = order_stats.demand_date
),
category_rolling as (
    select category, demand_date,
           avg(units_per_product) over (c rows between 27 preceding and current row)
               as category_mean_28,
           avg(units_per_product) over (c rows between 6 preceding and current row)
               as category_mean_7
    from (select category, demand_date, avg(units_sold) as units_per_product
          from demand group by category, demand_date)
    window c as (partition by category order by demand_date)
),
windows as (
    select product_id, category, product_family, demand_date, units_sold, source_batch_id,
           lag(units_sold, 6) over w as lag_7, lag(units_sold, 13) over w as lag_14,
           lag(units_sold, 27) over w as lag_28,
           avg(units_sold) over (w rows between 6 preceding and current row) as mean_7,
           avg(units_sold) over (w rows between 27 preceding and current row) as mean_28,
           avg(units_sold) over (w rows between 90 preceding and current row) as mean_91,
           avg(units_sold) over (w rows between 181 preceding and current row) as mean_182,
           sum(units_sold) over (w rows between 27 preceding and current row) as sum_28,
           count(*) over (w rows between 27 preceding and current row) as days_28,
           stddev_pop(units_sold) over (w rows between 27 preceding and current row) as std_28,
           max(units_sold) over (w rows between 27 preceding and current row) as max_28,
           count(*) filter (where units_sold > 0)
               over (w rows between 27 preceding and current row) as sale_days_28,
           count(*) filter (where units_sold > 0)
               over (w rows between 90 preceding and current row) as sale_days_91,
           sum(units_returned) over (w rows between 27 preceding and current row)
               as returned_28,
           sum(orders) over (w rows between 27 preceding and current row) as orders_28,
           sum(orders) over (w rows between 90 preceding and current row) as orders_91,
           sum(units_sold) over (w rows between 90 preceding and current row) as sum_91,
           sum(customers) over (w rows between 27 preceding and current row)
               as customer_days_28,
           max(largest_order_units) over (w rows between 27 preceding and current row)
               as largest_order_28,
           datediff('day', min(demand_date) over (partition by product_id), demand_date)
               as product_age_days,
           max(case when units_sold > 0 then demand_date end)
               over (w rows between unbounded preceding and current row) as last_sale_date,
           last_value(avg_unit_price ignore nulls)
               over (w rows between unbounded preceding and current row) as last_price,
           avg(avg_unit_price) over (w rows between 27 preceding and current row)
               as mean_price_28,
           avg(avg_unit_price) over (w rows between 90 preceding and current row)
               as mean_price_91
    from demand
    window w as (partition by product_id order by demand_date)
),
features as (
    select *, (sum_28 - max_28) / greatest(days_28 - 1, 1) as mean_28_trimmed from windows
)
select features.product_id, features.demand_date, features.category, features.units_sold,
       coalesce(lag_7, 0) as lag_7, coalesce(lag_14, 0) as lag_14,
       coalesce(lag_28, 0) as lag_28, mean_7, mean_28, mean_91,
       coalesce(std_28, 0) as std_28, max_28, sale_days_28, returned_28, product_age_days,
       datediff('day', last_sale_date, features.demand_date) as days_since_last_sale,
       last_price,
       case when mean_price_91 > 0 then last_price / mean_price_91 else 1.0 end
           as price_ratio_91,
       category_rolling.category_mean_28, product_family, mean_182, mean_28_trimmed,
       sale_days_91, orders_28, customer_days_28, largest_order_28,
       case when orders_91 > 0 then sum_91 / orders_91 else 0.0 end as units_per_order_91,
       case when mean_price_28 > 0 then last_price / mean_price_28 else 1.0 end
           as price_ratio_28,
       case when category_rolling.category_mean_28 > 0
           then category_rolling.category_mean_7 / category_rolling.category_mean_28
           else 1.0 end as category_trend_7_28,
       avg(mean_28_trimmed) over (partition by product_family, features.demand_date)
           as family_mean_28_trimmed,
       count(*) over (partition by product_family, features.demand_date) as family_products,
       source_batch_id
from features
left join category_rolling
    on features.category = category_rolling.category
    and features.demand_date = category_rolling.demand_date;

-- features at the scoring cutoff (the run date): the 365 days up to it ----------------------

create or replace temp view cutoff_lines as
select *, date '$RUN_DATE' as cutoff_date,
       (select coalesce(max(batch_id), 0) from as_of) as source_batch_id
from as_of
where not is_non_product and not is_return
    and ordered_date > date '$RUN_DATE' - interval 365 day;

create or replace table lim.feat_customer_product as
with pair_orders as (
    select cutoff_date, customer_id, product_id, order_id,
           any_value(source_batch_id) as source_batch_id, min(ordered_date) as ordered_date,
           sum(quantity) as units, sum(line_amount) as amount
    from cutoff_lines where customer_id is not null
    group by cutoff_date, customer_id, product_id, order_id
),
customer_orders as (
    select cutoff_date, customer_id, count(distinct order_id) as customer_orders_365,
           datediff('day', max(ordered_date), cutoff_date) as customer_recency_days
    from cutoff_lines where customer_id is not null
    group by cutoff_date, customer_id
),
pairs as (
    select cutoff_date, customer_id, product_id, any_value(source_batch_id) as source_batch_id,
           count(*) as pair_orders, sum(units) as pair_units, sum(amount) as pair_amount,
           datediff('day', max(ordered_date), cutoff_date) as pair_recency_days,
           datediff('day', min(ordered_date), cutoff_date) as pair_first_age_days,
           sum(exp(-datediff('day', ordered_date, cutoff_date) / 270.0))
               as pair_recency_weighted,
           count(*) filter (where ordered_date > cutoff_date - interval 90 day)
               as pair_orders_90,
           count(*) filter (where ordered_date > cutoff_date - interval 30 day)
               as pair_orders_30,
           datediff('day', min(ordered_date), max(ordered_date)) / nullif(count(*) - 1, 0)
               as pair_mean_gap_days
    from pair_orders group by cutoff_date, customer_id, product_id
)
select pairs.*, customer_orders.customer_orders_365, customer_orders.customer_recency_days
from pairs
inner join customer_orders
    on pairs.cutoff_date = customer_orders.cutoff_date
    and pairs.customer_id = customer_orders.customer_id;

create or replace table lim.feat_product_popularity as
-- distinct orders and buyers counted as groups (see feat_product_popularity.sql: DuckDB spills
-- count(distinct ...) badly at size L)
with line_stats as (
    select cutoff_date, product_id,
           coalesce(sum(quantity) filter (where ordered_date > cutoff_date - interval 30 day), 0)
               as units_30,
           median(unit_price) as median_price_365, any_value(source_batch_id) as source_batch_id
    from cutoff_lines group by cutoff_date, product_id
),
order_stats as (
    select cutoff_date, product_id,
           count(*) filter (where last_date > cutoff_date - interval 30 day) as orders_30,
           count(*) filter (where last_date > cutoff_date - interval 7 day) as orders_7,
           count(*) as orders_365
    from (
        select cutoff_date, product_id, order_id, max(ordered_date) as last_date
        from cutoff_lines where order_id is not null group by cutoff_date, product_id, order_id
    )
    group by cutoff_date, product_id
),
buyer_stats as (
    select cutoff_date, product_id,
           count(*) filter (where last_date > cutoff_date - interval 30 day) as buyers_30,
           count(*) as buyers_365
    from (
        select cutoff_date, product_id, customer_id, max(ordered_date) as last_date
        from cutoff_lines where customer_id is not null
        group by cutoff_date, product_id, customer_id
    )
    group by cutoff_date, product_id
)
select line_stats.cutoff_date, line_stats.product_id,
       coalesce(buyer_stats.buyers_30, 0) as buyers_30, line_stats.units_30,
       coalesce(order_stats.orders_30, 0) as orders_30, coalesce(order_stats.orders_7, 0) as orders_7,
       coalesce(order_stats.orders_365, 0) as orders_365,
       coalesce(buyer_stats.buyers_365, 0) as buyers_365,
       line_stats.median_price_365, line_stats.source_batch_id
from line_stats
left join order_stats using (cutoff_date, product_id)
left join buyer_stats using (cutoff_date, product_id);

create or replace table lim.feat_product_cooccurrence as
with baskets as (
    select cutoff_date, order_id, product_id, source_batch_id
    from (select distinct cutoff_date, order_id, product_id, source_batch_id from cutoff_lines)
    qualify count(*) over (partition by cutoff_date, order_id)
        between 2 and $COOCCURRENCE_MAX_ORDER_PRODUCTS
),
product_orders as (
    select cutoff_date, product_id, count(*) as product_orders
    from baskets group by cutoff_date, product_id
),
pair_counts as (
    select left_side.cutoff_date, left_side.product_id,
           right_side.product_id as related_product_id, count(*) as co_orders,
           any_value(left_side.source_batch_id) as source_batch_id
    from baskets as left_side
    inner join baskets as right_side
        on left_side.cutoff_date = right_side.cutoff_date
        and left_side.order_id = right_side.order_id
        and left_side.product_id != right_side.product_id
    group by left_side.cutoff_date, left_side.product_id, right_side.product_id
)
select pair_counts.cutoff_date, pair_counts.product_id, pair_counts.related_product_id,
       pair_counts.co_orders, product_side.product_orders,
       related_side.product_orders as related_orders,
       pair_counts.co_orders / product_side.product_orders as confidence,
       pair_counts.co_orders / sqrt(product_side.product_orders * related_side.product_orders)
           as cosine,
       pair_counts.source_batch_id
from pair_counts
inner join product_orders as product_side
    on pair_counts.cutoff_date = product_side.cutoff_date
    and pair_counts.product_id = product_side.product_id
inner join product_orders as related_side
    on pair_counts.cutoff_date = related_side.cutoff_date
    and pair_counts.related_product_id = related_side.product_id
qualify row_number() over (
    partition by pair_counts.cutoff_date, pair_counts.product_id
    order by pair_counts.co_orders desc, pair_counts.related_product_id asc
) <= $COOCCURRENCE_NEIGHBOURS;
