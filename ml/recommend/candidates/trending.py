"""``trending``: products whose orders of the last 7 days outrun their 30-day pace."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import empty, same_list_for_all
from ml.recommend.candidates.context import CandidateContext

MIN_ORDERS_7 = 3


def trending_products(context: CandidateContext, n: int) -> pd.DataFrame:
    """product_id, score = orders of the last 7 days minus the 30-day pace for 7 days."""
    pop = context.popularity
    excess = pop["orders_7"] - pop["orders_30"] * 7.0 / 30.0
    ranked = pd.DataFrame({"product_id": pop["product_id"], "score": excess.astype("float64")})
    ranked = ranked[(pop["orders_7"] >= MIN_ORDERS_7).to_numpy() & (ranked["score"] > 0)]
    return ranked.sort_values(["score", "product_id"], ascending=[False, True]).head(n)


def trending_candidates(context: CandidateContext, customers: list[str], n: int) -> pd.DataFrame:
    """The same n trending products for every customer."""
    ranked = trending_products(context, n)
    if ranked.empty:
        return empty()
    return same_list_for_all(customers, ranked)
