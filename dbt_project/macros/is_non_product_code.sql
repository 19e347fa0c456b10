{#- True for codes that are not merchandise: postage, fees, manual adjustments, samples,
    gift vouchers (letters-only codes, C<digits>, ADJUST*, TEST*, GIFT_*), except the
    dotcom-shop products whose letter-only codes start with DCGS. Mirrors
    shopflow.adapters.online_retail_ii.is_non_product_code (a test keeps the two in step);
    a generated or contract-native shop simply never uses such codes. -#}
{% macro is_non_product_code(column) -%}
    (
        coalesce(upper(trim({{ column }})), '') = ''
        or (
            regexp_full_match(
                upper(trim({{ column }})),
                '^([A-Z ]+|C[0-9]+|ADJUST[0-9]*|TEST[0-9]+|GIFT_[0-9]+_[0-9]+)$'
            )
            and not starts_with(upper(trim({{ column }})), 'DCGS')
        )
    )
{%- endmacro %}
