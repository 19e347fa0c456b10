"""``popular``: the most ordered products of the last 30 days (also the cold-start list)."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import same_list_for_all
from ml.recommend.candidates.context import CandidateContext


def popular_products(popularity: pd.DataFrame, n: int) -> pd.DataFrame:
    """product_id, score = 30-day orders; ties by 30-day buyers, 365-day orders, product id."""
    ordered = popularity.sort_values(
        ["orders_30", "buyers_30", "orders_365", "product_id"],
        ascending=[False, False, False, True],
    ).head(n)
    return pd.DataFrame(
        {"product_id": ordered["product_id"], "score": ordered["orders_30"].astype("float64")}
    )


def popular_candidates(context: CandidateContext, customers: list[str], n: int) -> pd.DataFrame:
    """The same n popular products for every customer."""
    return same_list_for_all(customers, popular_products(context.popularity, n))
