"""``repurchase``: the customer's own purchases of the last 365 days (wholesalers reorder)."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import top_per_customer
from ml.recommend.candidates.context import CandidateContext


def repurchase_candidates(context: CandidateContext, customers: list[str], n: int) -> pd.DataFrame:
    """Past products scored by Σ exp(-age/270) over the pair's orders, top n per customer."""
    pairs = context.pairs[context.pairs["product_id"].isin(context.products)]
    scored = pairs[["customer_id", "product_id"]].assign(
        score=pairs["pair_recency_weighted"].astype("float64").to_numpy()
    )
    return top_per_customer(scored, n)
