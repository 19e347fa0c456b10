"""``popular``: the most ordered products of the last 30 days (also the cold-start list)."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import run, same_list_for_all
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


def popular_sql(context: CandidateContext, n: int) -> str:
    """The same n popular products for every customer (order of :func:`popular_products`)."""
    return same_list_for_all(
        f"""
        select product_code, orders_30 as score from products
        order by orders_30 desc, buyers_30 desc, orders_365 desc, product_code
        limit {int(n)}
        """
    )


def popular_candidates(context: CandidateContext, customers: list[str], n: int) -> pd.DataFrame:
    return run(context.use_customers(customers), popular_sql(context, n))
