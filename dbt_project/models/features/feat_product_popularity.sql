-- Product popularity at each feature cutoff (see feat_customer_product): one row per
-- (cutoff_date, product_id) for products sold in the 365 days up to the cutoff.

with

cutoffs as (

    {{ feature_cutoffs() }}

),

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}
    where not is_non_product and not is_return

)

select
    cutoffs.cutoff_date,
    order_lines.product_id,
    count(distinct order_lines.customer_id) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 30 day
    ) as buyers_30,
    coalesce(sum(order_lines.quantity) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 30 day
    ), 0) as units_30,
    count(distinct order_lines.order_id) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 30 day
    ) as orders_30,
    count(distinct order_lines.order_id) filter (
        where order_lines.ordered_date > cutoffs.cutoff_date - interval 7 day
    ) as orders_7,
    count(distinct order_lines.order_id) as orders_365,
    count(distinct order_lines.customer_id) as buyers_365,
    median(order_lines.unit_price) as median_price_365

from cutoffs
inner join order_lines
    on cutoffs.cutoff_date >= order_lines.ordered_date
        and order_lines.ordered_date > cutoffs.cutoff_date - interval 365 day
group by cutoffs.cutoff_date, order_lines.product_id
