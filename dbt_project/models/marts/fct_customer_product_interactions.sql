with

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}
    where customer_id is not null and not is_non_product

)

select
    customer_id,
    product_id,
    min(ordered_date) filter (where not is_return) as first_ordered_date,
    max(ordered_date) filter (where not is_return) as last_ordered_date,
    count(distinct order_id) filter (where not is_return) as order_count,
    coalesce(sum(quantity) filter (where not is_return), 0) as units_bought,
    coalesce(-sum(quantity) filter (where is_return), 0) as units_returned,
    sum(line_amount) as net_amount

from order_lines
group by customer_id, product_id
having count(*) filter (where not is_return) > 0
