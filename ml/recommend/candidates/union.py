"""Union of the candidate generators: one row per (customer, product), every source's rank."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ml.recommend.candidates.bought_together import bought_together_sql
from ml.recommend.candidates.context import CandidateContext
from ml.recommend.candidates.country_popular import country_popular_sql
from ml.recommend.candidates.popular import popular_sql
from ml.recommend.candidates.repurchase import repurchase_sql
from ml.recommend.candidates.similar import similar_sql
from ml.recommend.candidates.trending import trending_sql

Generator = Callable[[CandidateContext, int], str | None]

# (reason, generator); the order decides ``reason`` when several sources propose a product:
# the most personal explanation wins
SOURCES: list[tuple[str, Generator]] = [
    ("repurchase", repurchase_sql),
    ("bought_together", bought_together_sql),
    ("similar", similar_sql),
    ("country_popular", country_popular_sql),
    ("trending", trending_sql),
    ("popular", popular_sql),
]
MISSING_RANK = 9999.0
SOURCE_NAMES = [name for name, _ in SOURCES]


def source_columns() -> list[str]:
    """The per-source feature columns generate_candidates adds (rank and score per source)."""
    return [f"{name}_{what}" for name, _ in SOURCES for what in ("rank", "score")]


def union_sql(context: CandidateContext, sizes: dict[str, int]) -> str:
    """SQL of :func:`generate_candidates` for the customers in the context's ``chunk``, by
    customer_code and product_code."""
    parts = []
    for order, (name, generator) in enumerate(SOURCES):
        n = sizes.get(name, 0)
        sql = generator(context, n) if n > 0 else None
        if sql is not None:
            parts.append(
                f"select customer_code, product_code, score, {order} as source from ({sql})"
            )
    if not parts:
        parts.append(
            "select cast(null as integer) as customer_code, cast(null as integer) as product_code,"
            " cast(null as double) as score, 0 as source where false"
        )
    reasons = ", ".join(f"'{name}'" for name, _ in SOURCES)
    per_source = ",\n".join(
        f"coalesce(max(rank) filter (where source = {order}), {MISSING_RANK}) as {name}_rank,\n"
        f"coalesce(max(score) filter (where source = {order}), 0.0) as {name}_score"
        for order, (name, _) in enumerate(SOURCES)
    )
    return f"""
        with proposed as ({" union all ".join(parts)}),
        ranked as (
            select *, cast(row_number() over (
                partition by customer_code, source order by score desc, product_code
            ) as double) as rank
            from proposed
        )
        select
            customer_code,
            product_code,
            [{reasons}][min(source) + 1] as reason,
            -- the reason as its place in SOURCES: what the scoring path reads (no strings)
            cast(min(source) as tinyint) as reason_source,
            count(*) as n_sources,
            {per_source}
        from ranked
        group by customer_code, product_code
    """


def generate_candidates(
    context: CandidateContext, customers: list[str], sizes: dict[str, int]
) -> pd.DataFrame:
    """customer_id, product_id, reason, n_sources and <source>_rank / <source>_score.

    ``sizes`` caps each source's list per customer (a source missing from it is skipped). A
    source that did not propose a product gets rank 9999 and score 0 for it.
    """
    context.use_customers(customers)
    frame = context.query(
        f"""
        select customer_id, product_id,
            u.* exclude (customer_code, product_code, reason_source)
        from ({union_sql(context, sizes)}) as u
        inner join customer_codes using (customer_code)
        inner join product_codes using (product_code)
        order by customer_id, product_id
        """
    )
    return frame.astype({"customer_id": object, "product_id": object, "reason": object})
