{#- The feature cutoffs of a run, one row per cutoff_date: the run date minus each of
    var feature_cutoff_offsets_days (0 = scoring) and, when var with_training_cutoffs is true,
    minus each of var training_cutoff_offsets_days (the ranker's training cutoffs). The
    nightly run builds the scoring cutoff only; training builds the training cutoffs on
    demand (ml.features.build_training_features). Shared by every per-cutoff feature model. -#}
{% macro feature_cutoffs() -%}
    {%- set offsets = var('feature_cutoff_offsets_days') | list -%}
    {%- if var('with_training_cutoffs') | string | lower == 'true' -%}
        {%- set offsets = offsets + (var('training_cutoff_offsets_days') | list) -%}
    {%- endif -%}
    select distinct cast({{ run_date() }} - to_days(cast(offset_days as integer)) as date)
        as cutoff_date
    from (
        select unnest({{ offsets | unique | list }}) as offset_days
    )
{%- endmacro %}


{#- The cutoffs a per-cutoff feature model computes in this run, with the ingest watermark
    (source_batch_id: the newest batch the visible order lines come from) they are computed
    at. A full refresh computes every cutoff of feature_cutoffs(); an incremental run only the
    cutoffs the table lacks or that may be stale (the rules of stale_from_date: a replaced
    partition, newly loaded lines, a change of visibility), so a training run on top of the
    night's build computes only the training cutoffs, and a rerun with unchanged data
    computes nothing. -#}
{% macro cutoffs_to_build() -%}
    select
        wanted.cutoff_date,
        (
            select coalesce(max(batch_id), 0) from {{ ref('int_order_lines_as_of') }}
        ) as source_batch_id
    from ({{ feature_cutoffs() }}) as wanted
    {%- if is_incremental() %}
        where
            wanted.cutoff_date not in (select distinct built.cutoff_date from {{ this }} as built)
            or wanted.cutoff_date >= ({{ stale_from_date('cutoff_date', 'source_batch_id') }})
    {%- endif %}
{%- endmacro %}


{#- Post-hook of the per-cutoff feature models: keep only this run's cutoffs, so the table
    holds what a full refresh of the run would hold and does not grow night after night. -#}
{% macro delete_other_cutoffs() -%}
    delete from {{ this }}
    where cutoff_date not in (select wanted.cutoff_date from ({{ feature_cutoffs() }}) as wanted)
{%- endmacro %}
