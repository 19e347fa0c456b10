"""``bought_together``: products often in the same basket as the customer's recent buys."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import expand_seeds, run
from ml.recommend.candidates.context import CandidateContext

SEEDS = 20


def bought_together_sql(context: CandidateContext, n: int) -> str | None:
    """Σ seed weight × co-occurrence cosine over the customer's top seed products."""
    return expand_seeds(context, "bought_together_rows", "cosine", SEEDS, n)


def bought_together_candidates(
    context: CandidateContext, customers: list[str], n: int
) -> pd.DataFrame:
    return run(context.use_customers(customers), bought_together_sql(context, n))
