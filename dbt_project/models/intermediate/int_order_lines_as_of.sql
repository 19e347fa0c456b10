-- Order lines visible to this run: dated on or before the run date. A backfill of an old date
-- therefore computes exactly what that night saw, whatever was ingested later.
with

order_lines as (

    select * from {{ ref('fct_order_lines') }}

)

select * from order_lines
where ordered_date <= {{ run_date() }}
