with

source as (

    select * from {{ source('raw', 'order_lines') }}

),

renamed as (

    select
        order_id,
        line_number,
        ordered_at,
        {{ local_date('ordered_at') }} as ordered_date,
        customer_id,
        product_id,
        quantity,
        cast(unit_price as double) as unit_price,
        currency,
        country,
        _partition_date as partition_date,
        _batch_id as batch_id,
        _source_file as source_file,
        _source_line as source_line

    from source

)

select * from renamed
