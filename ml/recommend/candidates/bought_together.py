"""``bought_together``: products often in the same basket as the customer's recent buys."""

from __future__ import annotations

import pandas as pd

from ml.recommend.candidates._common import empty, expand_seeds, top_per_customer
from ml.recommend.candidates.context import CandidateContext


def bought_together_candidates(
    context: CandidateContext, customers: list[str], n: int, seeds: int = 20
) -> pd.DataFrame:
    """Σ seed weight × co-occurrence cosine over the customer's top seed products."""
    if context.cooccurrence is None or context.cooccurrence.empty:
        return empty()
    neighbours = context.cooccurrence[["product_id", "related_product_id", "cosine"]]
    scored = expand_seeds(context.seeds(seeds), neighbours, "cosine")
    return top_per_customer(scored, n)
