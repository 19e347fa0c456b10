-- Order lines visible to this run: from landing partitions dated on or before the run date
-- (ingest never reads later ones, but a later run may have loaded them) and dated on or before
-- it. A backfill of an old date therefore computes what that night saw, whatever was ingested
-- later; a partition replaced since is seen in its current version.
with

order_lines as (

    select * from {{ ref('fct_order_lines') }}

)

select * from order_lines
where
    partition_date <= {{ run_date() }}
    and ordered_date <= {{ run_date() }}
