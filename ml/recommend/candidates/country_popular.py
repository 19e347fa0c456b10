"""``country_popular``: what customers of the same country bought in the last 90 days."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import run
from ml.recommend.candidates.context import COUNTRY_WINDOW_DAYS, CandidateContext

WINDOW_DAYS = COUNTRY_WINDOW_DAYS


def country_popular_sql(context: CandidateContext, n: int) -> str | None:
    """The country's n most bought products (distinct recent buyers) for each customer with a
    known country."""
    if not context.has_countries:
        return None
    return f"""
        select chunk.customer_code, ranked.product_code, ranked.score
        from chunk
        inner join customer_country using (customer_code)
        inner join (
            select country, product_code, score from country_popularity
            qualify row_number() over (
                partition by country order by score desc, product_code
            ) <= {int(n)}
        ) as ranked using (country)
    """


def country_popular_candidates(
    context: CandidateContext, customers: list[str], n: int
) -> pd.DataFrame:
    return run(context.use_customers(customers), country_popular_sql(context, n))
