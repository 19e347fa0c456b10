"""``similar``: products whose names resemble what the customer bought (TF-IDF cosine)."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import empty, expand_seeds, top_per_customer
from ml.recommend.candidates.context import CandidateContext


def similar_candidates(
    context: CandidateContext, customers: list[str], n: int, seeds: int = 20
) -> pd.DataFrame:
    """Σ seed weight × name similarity over the customer's top seed products."""
    if context.similar is None or context.similar.empty:
        return empty()
    scored = expand_seeds(context.seeds(seeds), context.similar, "similarity")
    return top_per_customer(scored, n)
