{#- The feature cutoffs of a run, one row per cutoff_date: the run date minus each of
    var feature_cutoff_offsets_days (0 = scoring; the others are the ranker's training
    cutoffs). Shared by every per-cutoff feature model. -#}
{% macro feature_cutoffs() -%}
    select cast({{ run_date() }} - to_days(cast(offset_days as integer)) as date) as cutoff_date
    from (
        select unnest({{ var('feature_cutoff_offsets_days') }}) as offset_days
    )
{%- endmacro %}
