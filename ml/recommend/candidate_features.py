"""Candidate features: stage 1's candidates joined with every feature the ranker reads.

The candidates come from ``ml.recommend.candidates`` (one small module per source); this
module owns the feature columns (:data:`FEATURES`, the contract between this SQL and the
model in :mod:`ml.recommend.ranker`), the SQL that computes them per (customer, product), and
the ways to read them: a :class:`CandidateBatch` of arrays for scoring, or frames for training
and tests, for all customers at once or :data:`CUSTOMER_CHUNK` customers at a time.

All features come from the ``feat_customer_product``, ``feat_product_popularity`` and
``feat_product_cooccurrence`` marts, computed per cutoff from order lines dated on or before
it, and from purchases filtered to the cutoff: nothing after a cutoff reaches its rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.recommend.candidates import CandidateContext
from ml.recommend.candidates.union import (
    MISSING_RANK,
    SOURCE_NAMES,
    source_columns,
    union_sql,
)

if TYPE_CHECKING:
    from ml.recommend.params import RankerParams

_SOURCE_NAMES = np.asarray(SOURCE_NAMES, dtype=object)

PAIR_FEATURES = [
    "pair_orders",
    "pair_units",
    "pair_amount",
    "pair_recency_days",
    "pair_first_age_days",
    "pair_recency_weighted",
    "pair_orders_90",
    "pair_orders_30",
    "pair_mean_gap_days",
    "pair_due_ratio",
    "pair_order_share",
    "pair_recency_gap",
]
PRODUCT_FEATURES = [
    "buyers_30",
    "units_30",
    "orders_30",
    "orders_7",
    "orders_365",
    "buyers_365",
    "median_price_365",
    "popularity_rank",
    "trend_ratio",
    "product_repeat_rate",
]
CUSTOMER_FEATURES = [
    "customer_products_365",
    "customer_orders_365",
    "customer_recency_days",
    "price_vs_customer",
    "customer_repeat_rate",
]
SOURCE_FEATURES = ["is_repurchase_candidate", *source_columns(), "n_sources"]
FEATURES = PAIR_FEATURES + PRODUCT_FEATURES + CUSTOMER_FEATURES + SOURCE_FEATURES


# value of a feature that does not apply (no history of the pair, no neighbour ...)
FILL = {
    "pair_recency_days": 999.0,
    "pair_first_age_days": 999.0,
    "pair_mean_gap_days": 999.0,
    "customer_recency_days": 999.0,
    "popularity_rank": MISSING_RANK,
    "price_vs_customer": 1.0,
    **{c: MISSING_RANK for c in source_columns() if c.endswith("_rank")},
}


def build_candidates(
    pairs: pd.DataFrame,
    popularity: pd.DataFrame,
    customers: list[str],
    cutoff: dt.date,
    params: RankerParams,
    allowed: set[str] | None = None,
    *,
    cooccurrence: pd.DataFrame | None = None,
    similar: pd.DataFrame | None = None,
    purchases: pd.DataFrame | None = None,
    countries: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Candidate rows (customer, product, reason) with ranker features, at one cutoff.

    Only products sold in the 365 days up to the cutoff (and in ``allowed`` when given) are
    proposed, each once per customer. Sources whose input is not given (co-occurrence, name
    neighbours, purchases with countries) propose nothing; :func:`candidates_for` passes them
    all from a ``RecommendInputs``.
    """
    context = CandidateContext.build(
        pairs,
        popularity,
        customers,
        cutoff,
        allowed,
        cooccurrence=cooccurrence,
        similar=similar,
        purchases=purchases,
        countries=countries,
    )
    try:
        return candidates_from(context, list(customers), params)
    finally:
        context.close()


def _column(present: set[str], name: str, table: str) -> str:
    """``table.name`` as a double, or NULL when the mart has no such column (older marts,
    hand-made test frames)."""
    return f"cast({table}.{name} as double)" if name in present else "cast(null as double)"


def _ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator, NULL (then filled) where the denominator is 0 or NULL."""
    return f"(({numerator}) / nullif({denominator}, 0))"


def candidate_features_sql(context: CandidateContext, params: RankerParams) -> str:
    """Candidates of the context's ``chunk`` with every ranker feature, one row per (customer,
    product) by code, ordered by customer and product: the union of the generators joined
    with the pair, customer and product features of the cutoff.

    A feature that does not apply (no history of the pair, no neighbour ...) gets its FILL
    value (0 unless listed there); a ratio with a zero denominator counts as not applying.
    """
    pair_cols = context.columns("pairs")
    product_cols = context.columns("products")
    pair = {c: _column(pair_cols, c, "p") for c in PAIR_FEATURES}
    product = {c: _column(product_cols, c, "products") for c in PRODUCT_FEATURES}
    has = "customer_orders_365" in pair_cols
    # marts built before these columns existed: derive them from the pairs
    orders_365 = (
        "max(cast(customer_orders_365 as double))" if has else "max(cast(pair_orders as double))"
    )
    recency = (
        "max(cast(customer_recency_days as double))"
        if has
        else "min(cast(pair_recency_days as double))"
    )
    amount = _column(pair_cols, "pair_amount", "chunk_pairs")
    units = _column(pair_cols, "pair_units", "chunk_pairs")
    raw = {
        **pair,
        "pair_due_ratio": _ratio(pair["pair_recency_days"], pair["pair_mean_gap_days"]),
        "pair_order_share": _ratio(pair["pair_orders"], "customers.customer_orders_365"),
        # 0 when the product was in the customer's last order
        "pair_recency_gap": f"({pair['pair_recency_days']} - customers.customer_recency_days)",
        **product,
        "popularity_rank": "products.popularity_rank",
        "trend_ratio": _ratio(product["orders_7"], f"{product['orders_30']} + 1.0"),
        "product_repeat_rate": "product_repeat.product_repeat_rate",
        "customer_products_365": "customers.customer_products_365",
        "customer_orders_365": "customers.customer_orders_365",
        "customer_recency_days": "customers.customer_recency_days",
        "price_vs_customer": _ratio(product["median_price_365"], "customers.avg_unit_price"),
        "customer_repeat_rate": "customers.customer_repeat_rate",
        "is_repurchase_candidate": (
            f"case when u.reason_source = {SOURCE_NAMES.index('repurchase')} then 1.0 else 0.0 end"
        ),
        **{c: f"u.{c}" for c in SOURCE_FEATURES if c != "is_repurchase_candidate"},
    }
    # one fixed-size array column: it arrives in numpy as one float32 matrix, not one column each
    selected = ",\n".join(
        f"coalesce(cast({raw[c]} as double), {float(FILL.get(c, 0.0))!r})" for c in FEATURES
    )
    return f"""
        with u as ({union_sql(context, params.candidate_sizes())}),
        customers as (
            select
                customer_code,
                cast(count(distinct product_code) as double) as customer_products_365,
                {orders_365} as customer_orders_365,
                {recency} as customer_recency_days,
                -- DECIMAL sums are exact: the same whichever thread adds which rows
                case when sum(cast({units} as decimal(38, 12))) > 0
                    then cast(sum(cast({amount} as decimal(38, 12))) as double)
                        / cast(sum(cast({units} as decimal(38, 12))) as double)
                end as avg_unit_price,
                avg(case when cast(pair_orders as double) > 1 then 1.0 else 0.0 end)
                    as customer_repeat_rate
            from chunk_pairs
            group by customer_code
        )
        select u.customer_code, u.product_code, u.reason_source,
            cast([{selected}] as float[{len(FEATURES)}]) as features
        from u
        left join chunk_pairs as p using (customer_code, product_code)
        left join customers using (customer_code)
        left join (
            select *, cast(rank() over (order by orders_30 desc) as double) as popularity_rank
            from products
        ) as products using (product_code)
        left join product_repeat using (product_code)
        order by u.customer_code, u.product_code
    """


@dataclass(frozen=True)
class CandidateBatch:
    """One chunk's candidates as arrays, one row per (customer, product), ordered by customer
    and product code (codes sort like the ids, see ``CandidateContext``). Nightly scoring
    reads these and looks ids up for the kept rows only: the ids of millions of candidates
    are never turned into Python strings."""

    customer_codes: np.ndarray
    product_codes: np.ndarray
    sources: np.ndarray  # each row's reason, as its place in SOURCE_NAMES
    features: np.ndarray  # float32, one column per FEATURES entry (what the booster reads)

    @property
    def reasons(self) -> np.ndarray:
        """Each row's reason (the source's name), as an object array."""
        return _SOURCE_NAMES[self.sources]


def candidate_batch(
    context: CandidateContext, customers: list[str], params: RankerParams
) -> CandidateBatch:
    """The candidates of ``customers`` (all of them in ``context``) with ranker features."""
    context.use_customers(customers)
    table = context.con.sql(candidate_features_sql(context, params)).to_arrow_table()
    # a fixed-size array column: its values are one float32 buffer, read without a copy
    features = table.column("features").combine_chunks()
    matrix = np.asarray(features.values.to_numpy(zero_copy_only=False), dtype=np.float32)
    codes = {
        c: table.column(c).to_numpy() for c in ("customer_code", "product_code", "reason_source")
    }
    return CandidateBatch(
        codes["customer_code"],
        codes["product_code"],
        codes["reason_source"],
        matrix.reshape(table.num_rows, len(FEATURES)),
    )


def candidates_from(
    context: CandidateContext, customers: list[str], params: RankerParams
) -> pd.DataFrame:
    """Candidates with ranker features for ``customers`` (all of them in ``context``):
    customer_id, product_id, reason and FEATURES (float32, what the booster reads), ordered
    by customer and product."""
    batch = candidate_batch(context, customers, params)
    customer_ids, product_ids = context.ids_of(batch.customer_codes, batch.product_codes)
    keys = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "product_id": product_ids,
            "reason": batch.reasons,
        }
    )
    values = pd.DataFrame(batch.features, columns=FEATURES, copy=False)
    return pd.concat([keys, values], axis=1)


def context_for(
    inputs, customers: list[str], cutoff: dt.date, allowed: set[str] | None = None
) -> CandidateContext:
    """The candidate context with every source a ``ml.features.RecommendInputs`` provides."""
    return CandidateContext.build(
        inputs.pairs,
        inputs.popularity,
        customers,
        cutoff,
        allowed,
        cooccurrence=getattr(inputs, "cooccurrence", None),
        similar=getattr(inputs, "similar", None),
        purchases=inputs.purchases,
        countries=getattr(inputs, "countries", None),
    )


def candidates_for(
    inputs,
    customers: list[str],
    cutoff: dt.date,
    params: RankerParams,
    allowed: set[str] | None = None,
) -> pd.DataFrame:
    """build_candidates with every source a ``ml.features.RecommendInputs`` provides."""
    context = context_for(inputs, customers, cutoff, allowed)
    try:
        return candidates_from(context, list(customers), params)
    finally:
        context.close()


def candidate_chunks(
    inputs,
    customers: list[str],
    cutoff: dt.date,
    params: RankerParams,
    allowed: set[str] | None = None,
):
    """candidates_for, CUSTOMER_CHUNK customers at a time (one context for the cutoff), so
    memory is bounded by one chunk's candidates; the rows are the same as in one call."""
    context = context_for(inputs, customers, cutoff, allowed)
    try:
        for chunk in customer_chunks(list(customers)):
            yield candidates_from(context, chunk, params)
    finally:
        context.close()


# customers whose candidates are built and scored at once: bounds memory on large shops
# (a customer's candidates and features do not depend on which other customers are asked)
CUSTOMER_CHUNK = 10_000


def customer_chunks(customers: list[str], size: int | None = None):
    """``customers`` in consecutive slices of at most ``size`` (default CUSTOMER_CHUNK)."""
    size = size or CUSTOMER_CHUNK
    for start in range(0, len(customers), size):
        yield customers[start : start + size]
