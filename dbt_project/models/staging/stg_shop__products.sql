with

source as (

    select * from {{ source('raw', 'products') }}

),

renamed as (

    select
        product_id,
        name as product_name,
        category,
        cast(list_price as double) as list_price,
        first_available_at,
        _partition_date as partition_date

    from source

)

select * from renamed
