with

source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        customer_id,
        created_at,
        country,
        _partition_date as partition_date

    from source

)

select * from renamed
