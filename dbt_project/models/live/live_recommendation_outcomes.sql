{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='run_date',
        on_schema_change='append_new_columns',
    )
}}
-- What the recommendation lists published at each earlier run date D were worth: scored on
-- what their customers bought in (D, D + W] (W: SHOPFLOW_LIVE_WINDOW_DAYS, default 28), on
-- the night D + W, when that window is complete. One row per (run_date, model_name, reason,
-- metric). model_name is the ranker ('recommendations', model_version = the version that
-- served) or a baseline list recorded the same night ('baseline_popularity_30d',
-- 'baseline_repurchase_frequency'; model_version null).
-- Customers scored: those with a list at D who bought at least one product in the window.
-- reason 'all': hit_rate_at_k (share of them who bought something from their list),
-- recall_at_k and ndcg_at_k (ml/metrics.py: binary gain, ideal over min(K, products bought)).
-- reason = a candidate source: item_hit_rate, the share of the list places that source filled
-- whose product the customer bought in the window. Incremental like live_forecast_accuracy.

{% set window_days = var('live_window_days') | int %}
{#- the lists whose window became complete in [first night, run date] -#}
{% set batch %}
    run_date between {{ live_first_night() }} - {{ window_days }}
    and {{ run_date() }} - {{ window_days }}
{% endset %}

with

lists as (

    select
        run_date,
        'recommendations' as model_name,
        model_version,
        customer_id,
        rank,
        product_id,
        reason
    from {{ prediction_rows('recommendations', {
        'run_date': 'date', 'model_version': 'varchar', 'customer_id': 'varchar',
        'rank': 'integer', 'product_id': 'varchar', 'reason': 'varchar'}) }}
    where {{ batch }}

    union all

    select
        run_date,
        model_name,
        cast(null as varchar) as model_version,
        customer_id,
        rank,
        product_id,
        reason
    from {{ prediction_rows('baseline_recommendations', {
        'run_date': 'date', 'model_name': 'varchar', 'customer_id': 'varchar',
        'rank': 'integer', 'product_id': 'varchar', 'reason': 'varchar'}) }}
    where {{ batch }}

),

run_dates as (

    select distinct run_date
    from lists

),

bought as (

    select distinct
        run_dates.run_date,
        order_lines.customer_id,
        order_lines.product_id
    from run_dates
    inner join {{ ref('int_order_lines_as_of') }} as order_lines
        on run_dates.run_date < order_lines.ordered_date
            and run_dates.run_date + {{ window_days }} >= order_lines.ordered_date
    where not order_lines.is_non_product
        and not order_lines.is_return
        and order_lines.customer_id is not null

),

buyers as (

    select
        run_date,
        customer_id,
        count(*) as products_bought
    from bought
    group by run_date, customer_id

),

scored as (

    -- the list places of customers who bought in the window, with whether it was bought
    select
        lists.run_date,
        lists.model_name,
        lists.model_version,
        lists.customer_id,
        lists.rank,
        lists.reason,
        buyers.products_bought,
        bought.product_id is not null as hit
    from lists
    inner join buyers
        on lists.run_date = buyers.run_date and lists.customer_id = buyers.customer_id
    left join bought
        on lists.run_date = bought.run_date
            and lists.customer_id = bought.customer_id
            and lists.product_id = bought.product_id

),

k as (

    select max(rank) as k from scored

),

per_customer as (

    select
        scored.run_date,
        scored.model_name,
        scored.model_version,
        scored.customer_id,
        count(*) filter (where scored.hit) as hits,
        least(any_value(scored.products_bought), any_value(k.k)) as depth,
        coalesce(sum(1 / log2(scored.rank + 1)) filter (where scored.hit), 0) as dcg
    from scored
    cross join k
    group by scored.run_date, scored.model_name, scored.model_version, scored.customer_id

),

ideal as (

    -- ideal DCG of a customer who bought `depth` products: all found at the top
    select
        places.place as depth,
        sum(1 / log2(places.place + 1)) over (order by places.place) as ideal_dcg
    from (select unnest(range(1, k.k + 1)) as place from k) as places

),

customer_metrics as (

    select
        per_customer.run_date,
        per_customer.model_name,
        per_customer.model_version,
        count(*) as customers,
        avg(cast(per_customer.hits > 0 as double)) as hit_rate_at_k,
        avg(per_customer.hits / per_customer.depth) as recall_at_k,
        avg(per_customer.dcg / ideal.ideal_dcg) as ndcg_at_k,
        cast(sum(per_customer.hits) as bigint) as hits
    from per_customer
    inner join ideal on per_customer.depth = ideal.depth
    group by per_customer.run_date, per_customer.model_name, per_customer.model_version

),

reason_metrics as (

    select
        run_date,
        model_name,
        model_version,
        reason,
        count(distinct customer_id) as customers,
        count(*) as places,
        count(*) filter (where hit) as hits
    from scored
    group by run_date, model_name, model_version, reason

)

select
    run_date,
    model_name,
    model_version,
    'all' as reason,
    metric,
    value,
    customers,
    hits,
    {{ run_date() }} as evaluated_through
from customer_metrics
unpivot (value for metric in (hit_rate_at_k, recall_at_k, ndcg_at_k))

union all

select
    run_date,
    model_name,
    model_version,
    reason,
    'item_hit_rate' as metric,
    hits / places as value,
    customers,
    hits,
    {{ run_date() }} as evaluated_through
from reason_metrics

order by run_date, model_name, reason, metric
