-- Latest attributes the shop sent per customer (optional entity), as of the run date.
with

customers as (

    select * from {{ ref('stg_shop__customers') }}
    where partition_date <= {{ run_date() }}

),

ranked as (

    select
        *,
        row_number() over (partition by customer_id order by partition_date desc) as recency_rank
    from customers

)

select
    customer_id,
    created_at,
    country
from ranked
where recency_rank = 1
