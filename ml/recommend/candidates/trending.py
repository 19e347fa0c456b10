"""``trending``: products whose orders of the last 7 days outrun their 30-day pace."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import run, same_list_for_all
from ml.recommend.candidates.context import CandidateContext

MIN_ORDERS_7 = 3


def trending_sql(context: CandidateContext, n: int) -> str:
    """The same n products for everyone, scored by orders of the last 7 days minus the 30-day
    pace for 7 days (at least MIN_ORDERS_7 orders in the week)."""
    return same_list_for_all(
        f"""
        select product_code, orders_7 - orders_30 * 7.0 / 30.0 as score from products
        where orders_7 >= {MIN_ORDERS_7} and orders_7 - orders_30 * 7.0 / 30.0 > 0
        order by score desc, product_code
        limit {int(n)}
        """
    )


def trending_candidates(context: CandidateContext, customers: list[str], n: int) -> pd.DataFrame:
    return run(context.use_customers(customers), trending_sql(context, n))
