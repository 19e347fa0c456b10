"""``repurchase``: the customer's own purchases of the last 365 days (wholesalers reorder)."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import run, top_n
from ml.recommend.candidates.context import CandidateContext


def repurchase_sql(context: CandidateContext, n: int) -> str:
    """Past products scored by Σ exp(-age/270) over the pair's orders, top n per customer."""
    return top_n(
        """
        select customer_code, product_code, cast(pair_recency_weighted as double) as score
        from chunk_pairs
        where product_code in (select product_code from products)
        """,
        n,
    )


def repurchase_candidates(context: CandidateContext, customers: list[str], n: int) -> pd.DataFrame:
    return run(context.use_customers(customers), repurchase_sql(context, n))
