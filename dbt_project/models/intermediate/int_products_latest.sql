-- Latest attributes the shop sent per product (optional entity), as of the run date.
with

products as (

    select * from {{ ref('stg_shop__products') }}
    where partition_date <= {{ run_date() }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by product_id order by partition_date desc, first_available_at desc
        ) as recency_rank
    from products

)

select
    product_id,
    product_name,
    category,
    list_price,
    first_available_at
from ranked
where recency_rank = 1
