with

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

shop_customers as (

    select * from {{ ref('int_customers_latest') }}

),

order_stats as (

    select
        customer_id,
        min(ordered_date) as first_order_date,
        max(ordered_date) filter (where not is_return_order) as last_order_date,
        count(*) filter (where not is_return_order) as order_count,
        sum(net_amount) as monetary_net,
        arg_max(country, ordered_at) as last_order_country

    from orders
    group by customer_id

),

all_customers as (

    select customer_id from order_stats
    union
    select customer_id from shop_customers

)

select
    all_customers.customer_id,
    coalesce(shop_customers.country, order_stats.last_order_country) as country,
    coalesce(
        shop_customers.created_at, cast(order_stats.first_order_date as timestamp)
    ) as created_at,
    order_stats.first_order_date,
    order_stats.last_order_date,
    coalesce(order_stats.order_count, 0) as order_count,
    coalesce(order_stats.monetary_net, 0) as monetary_net,
    datediff('day', order_stats.last_order_date, {{ run_date() }}) as recency_days,
    order_stats.last_order_date >= {{ run_date() }} - interval 90 day as is_active

from all_customers
left join shop_customers on all_customers.customer_id = shop_customers.customer_id
left join order_stats on all_customers.customer_id = order_stats.customer_id
