"""Union of the candidate generators: one row per (customer, product), every source's rank."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ml.recommend.candidates.bought_together import bought_together_candidates
from ml.recommend.candidates.context import CandidateContext
from ml.recommend.candidates.country_popular import country_popular_candidates
from ml.recommend.candidates.popular import popular_candidates
from ml.recommend.candidates.repurchase import repurchase_candidates
from ml.recommend.candidates.similar import similar_candidates
from ml.recommend.candidates.trending import trending_candidates

Generator = Callable[[CandidateContext, list[str], int], pd.DataFrame]

# (reason, generator); the order decides ``reason`` when several sources propose a product:
# the most personal explanation wins
SOURCES: list[tuple[str, Generator]] = [
    ("repurchase", repurchase_candidates),
    ("bought_together", bought_together_candidates),
    ("similar", similar_candidates),
    ("country_popular", country_popular_candidates),
    ("trending", trending_candidates),
    ("popular", popular_candidates),
]
MISSING_RANK = 9999.0


def source_columns() -> list[str]:
    """The per-source feature columns generate_candidates adds (rank and score per source)."""
    return [f"{name}_{what}" for name, _ in SOURCES for what in ("rank", "score")]


def generate_candidates(
    context: CandidateContext, customers: list[str], sizes: dict[str, int]
) -> pd.DataFrame:
    """customer_id, product_id, reason, n_sources and <source>_rank / <source>_score.

    ``sizes`` caps each source's list per customer (a source missing from it is skipped). A
    source that did not propose a product gets rank 9999 and score 0 for it.
    """
    frames = []
    asked = set(customers)
    for order, (name, generator) in enumerate(SOURCES):
        n = sizes.get(name, 0)
        if n <= 0:
            continue
        rows = generator(context, customers, n)
        rows = rows[rows["customer_id"].isin(asked)]
        if rows.empty:
            continue
        ordered = rows.sort_values(
            ["customer_id", "score", "product_id"], ascending=[True, False, True]
        )
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": ordered["customer_id"].to_numpy(dtype=object),
                    "product_id": ordered["product_id"].to_numpy(dtype=object),
                    "source": order,
                    "rank": ordered.groupby("customer_id").cumcount().to_numpy() + 1.0,
                    "score": ordered["score"].to_numpy(dtype="float64"),
                }
            )
        )
    if not frames:
        columns = ["customer_id", "product_id", "reason", "n_sources", *source_columns()]
        return pd.DataFrame(columns=columns)
    long = pd.concat(frames, ignore_index=True)
    # every generator lists a product at most once per customer, so the index is unique
    wide = long.set_index(["customer_id", "product_id", "source"])[["rank", "score"]].unstack(
        "source"
    )
    result = wide.index.to_frame(index=False)
    first_source = np.full(len(result), len(SOURCES), dtype=int)
    for order, (name, _) in enumerate(SOURCES):
        if ("rank", order) in wide.columns:
            rank = wide[("rank", order)].to_numpy()
            score = wide[("score", order)].to_numpy()
            proposed = ~np.isnan(rank)
            first_source = np.where(proposed & (first_source > order), order, first_source)
            result[f"{name}_rank"] = np.where(proposed, rank, MISSING_RANK)
            result[f"{name}_score"] = np.where(proposed, score, 0.0)
        else:
            result[f"{name}_rank"] = MISSING_RANK
            result[f"{name}_score"] = 0.0
    names = np.array([name for name, _ in SOURCES], dtype=object)
    result["reason"] = names[first_source]
    result["n_sources"] = (result[[f"{n}_rank" for n, _ in SOURCES]] < MISSING_RANK).sum(axis=1)
    return result
