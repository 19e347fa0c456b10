"""``similar``: products whose names resemble what the customer bought (TF-IDF cosine)."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import expand_seeds, run
from ml.recommend.candidates.context import CandidateContext

SEEDS = 20


def similar_sql(context: CandidateContext, n: int) -> str | None:
    """Σ seed weight × name similarity over the customer's top seed products."""
    return expand_seeds(context, "similar_rows", "similarity", SEEDS, n)


def similar_candidates(context: CandidateContext, customers: list[str], n: int) -> pd.DataFrame:
    return run(context.use_customers(customers), similar_sql(context, n))
