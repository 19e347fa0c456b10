"""Recommendation baselines computed in the same run as the ranker (docs/design.md, "Metrics").

Each returns top-k lists as a frame (customer_id, rank, product_id, score, reason) for the
given customers at one cutoff, from the same feature marts the ranker reads.

A baseline can also *serve*: when it beats the trained ranker on the same holdout, the
registry's champion is a :class:`BaselineRecommender` (a small JSON artifact naming the
baseline, with the metrics and the reason it serves), scored by the nightly run like a model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml.baseline_artifact import read_baseline, save_baseline
from ml.recommend.top_k import popular_products, top_k


def _at(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    return frame[pd.to_datetime(frame["cutoff_date"]) == pd.Timestamp(cutoff)]


def _fill_with_popular(
    personal: pd.DataFrame, popular: pd.DataFrame, customers: list[str], k: int
) -> pd.DataFrame:
    """Append the popular list below each customer's own scores, then keep the top k."""
    n = len(popular)
    filler = pd.DataFrame(
        {
            "customer_id": np.repeat(np.asarray(customers, dtype=object), n),
            "product_id": np.tile(popular["product_id"].to_numpy(), len(customers)),
            # below any personal score, in popularity order
            "score": np.tile(-np.arange(1, n + 1, dtype=float), len(customers)),
            "reason": "popular",
        }
    )
    return top_k(pd.concat([personal, filler], ignore_index=True), k)


def popularity_30(pairs, popularity, customers, cutoff, k, allowed=None) -> pd.DataFrame:
    """Global popularity of the last 30 days: the same list for everyone."""
    popular = popular_products(popularity, cutoff, allowed, k)
    empty = pd.DataFrame(columns=["customer_id", "product_id", "score", "reason"])
    return _fill_with_popular(empty, popular, customers, k)


def _personal(pairs, customers, cutoff, allowed, score_column, tiebreak, popularity):
    at = _at(pairs, cutoff)
    at = at[at["customer_id"].isin(customers)]
    if allowed is not None:
        at = at[at["product_id"].isin(allowed)]
    pop = _at(popularity, cutoff)[["product_id", "orders_30"]]
    at = at.merge(pop, on="product_id", how="left").fillna({"orders_30": 0})
    ordered = at.sort_values(
        ["customer_id", score_column, tiebreak, "product_id"], ascending=[True, False, False, True]
    )
    position = ordered.groupby("customer_id").cumcount()
    return pd.DataFrame(
        {
            "customer_id": ordered["customer_id"],
            "product_id": ordered["product_id"],
            # positive and decreasing in list order; the popular filler scores stay negative
            "score": (len(ordered) + 1.0 - position).astype(float),
            "reason": "repurchase",
        }
    )


def repurchase_frequency(pairs, popularity, customers, cutoff, k, allowed=None):
    """The customer's own most frequently bought products, filled with popular ones."""
    personal = _personal(pairs, customers, cutoff, allowed, "pair_orders", "orders_30", popularity)
    popular = popular_products(popularity, cutoff, allowed, k)
    return _fill_with_popular(personal, popular, customers, k)


def recency_weighted_repurchase(pairs, popularity, customers, cutoff, k, allowed=None):
    """Σ exp(-age/270) over the customer's past invoices of a product (365 days), ties by
    30-day popularity, filled up with the 30-day most popular products."""
    personal = _personal(
        pairs, customers, cutoff, allowed, "pair_recency_weighted", "orders_30", popularity
    )
    popular = popular_products(popularity, cutoff, allowed, k)
    return _fill_with_popular(personal, popular, customers, k)


def item_cooccurrence(
    pairs, popularity, customers, cutoff, k, allowed=None, *, cooccurrence=None
) -> pd.DataFrame:
    """Item-to-item co-occurrence: Σ over the customer's products of the last 365 days of the
    number of orders holding both that product and the candidate (feat_product_cooccurrence),
    filled up with the 30-day most popular products.

    Without ``cooccurrence`` rows (an older warehouse) it is the popularity list.
    """
    popular = popular_products(popularity, cutoff, allowed, k)
    if cooccurrence is None:
        return _fill_with_popular(_empty_lists(), popular, customers, k)
    history = _at(pairs, cutoff)
    history = history[history["customer_id"].isin(customers)][["customer_id", "product_id"]]
    neighbours = _at(cooccurrence, cutoff)[["product_id", "related_product_id", "co_orders"]]
    sold = set(_at(popularity, cutoff)["product_id"])
    if allowed is not None:
        sold &= set(allowed)
    neighbours = neighbours[neighbours["related_product_id"].isin(sold)]
    # a join of every customer's history with every neighbour list: millions of rows at scale,
    # summed in an in-process DuckDB (integer counts: the sums are exact in any order)
    con = duckdb.connect()
    try:
        con.register("history", history)
        con.register("neighbours", neighbours)
        scored = con.execute(
            """
            select history.customer_id, neighbours.related_product_id,
                cast(sum(neighbours.co_orders) as double) as co_orders
            from history inner join neighbours using (product_id)
            group by history.customer_id, neighbours.related_product_id
            qualify row_number() over (
                partition by history.customer_id
                order by sum(neighbours.co_orders) desc, neighbours.related_product_id
            ) <= $k
            """,
            {"k": int(k)},
        ).df()
    finally:
        con.close()
    personal = pd.DataFrame(
        {
            "customer_id": scored["customer_id"],
            "product_id": scored["related_product_id"],
            "score": scored["co_orders"].astype(float),
            "reason": "bought_together",
        }
    )
    return _fill_with_popular(personal, popular, customers, k)


def _empty_lists() -> pd.DataFrame:
    return pd.DataFrame(columns=["customer_id", "product_id", "score", "reason"])


BASELINES = {
    "baseline_popularity_30d": popularity_30,
    "baseline_repurchase_frequency": repurchase_frequency,
    "baseline_item_cooccurrence": item_cooccurrence,
    "baseline_recency_weighted_repurchase": recency_weighted_repurchase,
}
# baselines that also read feat_product_cooccurrence (keyword ``cooccurrence``)
NEEDS_COOCCURRENCE = {"baseline_item_cooccurrence"}


def baseline_lists(name: str, inputs, customers, cutoff: dt.date, k: int, allowed=None):
    """The top-k lists of baseline ``name`` for ``customers`` at ``cutoff`` from the
    recommender's inputs (``ml.features.RecommendInputs``)."""
    extra = {"cooccurrence": inputs.cooccurrence} if name in NEEDS_COOCCURRENCE else {}
    return BASELINES[name](
        inputs.pairs, inputs.popularity, list(customers), cutoff, k, allowed=allowed, **extra
    )


# -- lists beyond the ranker's customers -----------------------------------------------------
# the reserved customer id of the list for visitors without a history (new or anonymous)
NEW_CUSTOMER = "__new__"
# what scores known customers outside the ranker's active window: cheap, and it never puts a
# product the customer already bought first only because they bought it
ABSENT_CUSTOMERS_BASELINE = "baseline_item_cooccurrence"


def fallback_lists(inputs, customers, cutoff: dt.date, k: int, allowed=None) -> pd.DataFrame:
    """Lists for known customers the ranker does not score (no order in the active window)
    and for :data:`NEW_CUSTOMER` (the 30-day popular list, reason ``popular``)."""
    absent = baseline_lists(ABSENT_CUSTOMERS_BASELINE, inputs, customers, cutoff, k, allowed)
    new = popularity_30(inputs.pairs, inputs.popularity, [NEW_CUSTOMER], cutoff, k, allowed)
    return pd.concat([absent, new], ignore_index=True)


def known_customers(inputs, cutoff: dt.date) -> list[str]:
    """Customers with a purchase in the feature window up to ``cutoff``, in id order."""
    return sorted(set(_at(inputs.pairs, cutoff)["customer_id"].dropna()))


# -- a baseline as a servable recommender ----------------------------------------------------


@dataclass(frozen=True)
class BaselineRecommender:
    """One of :data:`BASELINES`, serving in place of a trained ranker."""

    name: str
    k: int = 10
    reason: str = ""
    metrics: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.name not in BASELINES:
            raise ValueError(
                f"unknown recommendation baseline {self.name!r}; known: {sorted(BASELINES)}"
            )

    @property
    def params(self) -> dict:
        """What the registry records as the version's parameters."""
        return {"baseline": self.name, "k": self.k}

    def recommend_for(self, inputs, customers, cutoff: dt.date, k: int, allowed=None):
        """Top-k lists (customer_id, rank, product_id, score, reason) for ``customers``."""
        return baseline_lists(self.name, inputs, customers, cutoff, k, allowed)

    def save(self, folder: Path) -> list[Path]:
        """Write the baseline's JSON artifact (name, parameters, metrics, reason)."""
        return save_baseline(self, folder)

    @classmethod
    def load(cls, folder: Path) -> BaselineRecommender:
        """The baseline saved in ``folder``."""
        name, params, reason, metrics = read_baseline(folder)
        return cls(name, k=int(params.get("k", 10)), reason=reason, metrics=metrics)
