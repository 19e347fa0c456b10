with

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}

),

orders as (

    select
        order_id,
        any_value(customer_id) as customer_id,
        min(ordered_at) as ordered_at,
        min(ordered_date) as ordered_date,
        any_value(country) as country,
        count(*) as line_count,
        sum(quantity) as net_units,
        sum(line_amount) as net_amount,
        bool_and(is_return) as is_return_order

    from order_lines
    group by order_id

)

select * from orders
