with

order_lines as (

    select * from {{ ref('int_order_lines_as_of') }}

),

shop_products as (

    select * from {{ ref('int_products_latest') }}

),

sales as (

    select
        product_id,
        min(ordered_date) filter (where not is_return) as first_sold_date,
        -- a product first seen in a return (sold before its history began) still has a date
        min(ordered_date) as first_seen_date,
        max(ordered_date) filter (where not is_return) as last_sold_date,
        sum(quantity) filter (where not is_return) as units_sold,
        -sum(quantity) filter (where is_return) as units_returned,
        avg(unit_price) filter (where not is_return and unit_price > 0) as avg_unit_price,
        min(unit_price) filter (where not is_return and unit_price > 0) as min_unit_price,
        max(unit_price) filter (where not is_return and unit_price > 0) as max_unit_price,
        arg_max(unit_price, ordered_at) filter (
            where not is_return and unit_price > 0
        ) as last_unit_price

    from order_lines
    group by product_id

),

all_products as (

    select product_id from sales
    union
    select product_id from shop_products

),

joined as (

    select
        all_products.product_id,
        coalesce(shop_products.product_name, all_products.product_id) as product_name,
        shop_products.category,
        coalesce(shop_products.list_price, sales.last_unit_price) as list_price,
        -- derived from the order lines when no products record says it (or it has no date)
        coalesce(
            shop_products.first_available_at,
            cast(sales.first_sold_date as timestamp),
            cast(sales.first_seen_date as timestamp)
        ) as first_available_at,
        sales.first_sold_date,
        sales.last_sold_date,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.units_returned, 0) as units_returned,
        sales.avg_unit_price,
        sales.min_unit_price,
        sales.max_unit_price,
        {{ is_non_product_code('all_products.product_id') }} as is_non_product

    from all_products
    left join shop_products on all_products.product_id = shop_products.product_id
    left join sales on all_products.product_id = sales.product_id

)

select
    *,
    -- sellable: real merchandise, already available, and sold (or launched) in the last 90 days
    coalesce(
        not is_non_product
        and first_available_at <= {{ run_date() }} + interval 1 day
        and coalesce(last_sold_date, cast(first_available_at as date))
        >= {{ run_date() }} - interval 90 day,
        false
    ) as is_sellable
from joined
