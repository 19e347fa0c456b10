"""Top-k lists: each customer's highest-scored candidates, with cold start and reasons.

Cold start: a customer with no purchase in the 365 days up to the cutoff has nothing personal
to rank, and the ranker (which learns mostly from customers with a history) ordered their
candidates worse than plain 30-day popularity on the real year (NDCG@10 0.094 vs 0.114 over
246 such customers at the 2010-11-11 cutoff): they get the 30-day popular list
(:func:`cold_start_scores`), with reason ``popular``.

Ties are broken by product id and customers come in id order, so the same scores always give
the same lists; :func:`recommend_for` builds, scores and cuts the candidates of
:data:`~ml.recommend.candidate_features.CUSTOMER_CHUNK` customers at a time.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import numpy as np
import pandas as pd

from ml.recommend.candidate_features import (
    FEATURES,
    CandidateBatch,
    candidate_batch,
    context_for,
    customer_chunks,
)
from ml.recommend.candidates._common import order_within_groups
from ml.recommend.candidates.context import at_cutoff
from ml.recommend.candidates.popular import popular_products as _ranked_popular
from ml.recommend.candidates.union import MISSING_RANK
from ml.recommend.params import RankerParams


class BatchScorer(Protocol):
    """What :func:`recommend_for` needs of a ranker (``ml.recommend.ranker.Ranker``); a
    protocol, so that this module and the ranker, which uses its top-k, import one way."""

    params: RankerParams

    def score_batch(self, batch: CandidateBatch) -> np.ndarray: ...


def popular_products(
    popularity: pd.DataFrame, cutoff: dt.date, allowed: set[str] | None, n: int
) -> pd.DataFrame:
    """Top-n products by 30-day orders at the cutoff (ties: 30-day buyers, then product id)."""
    at = at_cutoff(popularity, cutoff)
    if allowed is not None:
        at = at[at["product_id"].isin(allowed)]
    return at.loc[_ranked_popular(at, n).index]


def recommend_for(
    ranker: BatchScorer,
    inputs,
    customers: list[str],
    cutoff: dt.date,
    depths: tuple[int, ...],
    allowed: set[str] | None = None,
) -> tuple[pd.DataFrame, ...]:
    """The ranker's top lists at each depth in ``depths`` for ``customers`` at ``cutoff``.

    Candidates are built and scored CUSTOMER_CHUNK customers at a time, so memory is bounded
    by one chunk's candidates whatever the number of customers; the lists are the same as
    from one call with every customer.
    """
    parts: list[list[pd.DataFrame]] = [[] for _ in depths]
    context = context_for(inputs, customers, cutoff, allowed)
    try:
        for chunk in customer_chunks(list(customers)):
            batch = candidate_batch(context, chunk, ranker.params)
            scores = ranker.score_batch(batch)
            reasons = batch_reasons(batch)
            for part, depth in zip(parts, depths, strict=True):
                keep, rank = top_k_rows(batch.customer_codes, batch.product_codes, scores, depth)
                customer_ids, product_ids = context.ids_of(
                    batch.customer_codes[keep], batch.product_codes[keep]
                )
                part.append(_lists(customer_ids, rank, product_ids, scores[keep], reasons[keep]))
    finally:
        context.close()
    return tuple(pd.concat(part, ignore_index=True) for part in parts)


def _feature(values: np.ndarray, name: str) -> np.ndarray:
    return values[:, FEATURES.index(name)]


def is_cold_start(customer_products_365: np.ndarray) -> np.ndarray:
    """Rows of customers with no purchase in the 365 days up to the cutoff (by each row's
    ``customer_products_365`` feature)."""
    return np.asarray(customer_products_365) == 0


def cold_start_scores(
    values: np.ndarray, product_keys: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """``scores`` with the rows of customers without history replaced by 1 / the product's
    place in the 30-day popularity order (orders, then buyers, then 365-day orders, then
    product id: :func:`ml.recommend.candidates.popular.popular_products`), so such a
    customer's top k is the popularity baseline's list.

    ``values``: the rows' FEATURES matrix; ``product_keys``: each row's product id, or codes
    that sort like the ids."""
    cold = is_cold_start(_feature(values, "customer_products_365"))
    if not cold.any():
        return scores
    rows = values[cold]
    # product features are the same in every row of a product: its first row speaks for it
    products, first, inverse = np.unique(
        np.asarray(product_keys)[cold], return_index=True, return_inverse=True
    )
    order = np.lexsort(
        (
            np.arange(len(products)),  # product id, as np.unique sorted them
            -_feature(rows, "orders_365")[first],
            -_feature(rows, "buyers_30")[first],
            -_feature(rows, "orders_30")[first],
        )
    )
    place = np.empty(len(products), dtype=np.float32)
    place[order] = np.arange(1, len(products) + 1, dtype=np.float32)
    scores = np.array(scores, dtype="float32", copy=True)
    scores[cold] = 1.0 / place[inverse.reshape(-1)]
    return scores


def _reasons(
    reasons: np.ndarray, customer_products_365: np.ndarray, popular_rank: np.ndarray
) -> np.ndarray:
    """``reasons`` with ``popular`` for a customer without history whose list is the popular
    one (see :func:`cold_start_scores`)."""
    cold = is_cold_start(customer_products_365) & (np.asarray(popular_rank) < MISSING_RANK)
    if cold.any():
        reasons = reasons.copy()
        reasons[cold] = "popular"
    return reasons


def reasons_of(candidates: pd.DataFrame) -> np.ndarray:
    """Each candidate row's reason (see :func:`_reasons`)."""
    return _reasons(
        candidates["reason"].to_numpy(dtype=object),
        candidates["customer_products_365"].to_numpy(),
        candidates["popular_rank"].to_numpy(),
    )


def batch_reasons(batch: CandidateBatch) -> np.ndarray:
    """Each batch row's reason (see :func:`_reasons`)."""
    return _reasons(
        batch.reasons,
        _feature(batch.features, "customer_products_365"),
        _feature(batch.features, "popular_rank"),
    )


def top_k_rows(
    customer_codes: np.ndarray, product_codes: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of each customer's top k (highest score first, ties by product code, customers
    by code) and their ranks: ``np.lexsort((product_codes, -scores, customer_codes))`` cut at
    k, sorting customer numbers that fit 16 bits (see :func:`order_within_groups`)."""
    customers = np.asarray(customer_codes)
    products = np.asarray(product_codes)
    ordered = len(customers) < 2 or bool(
        np.all(
            (customers[1:] > customers[:-1])
            | ((customers[1:] == customers[:-1]) & (products[1:] > products[:-1]))
        )
    )
    first = np.arange(len(customers)) if ordered else np.lexsort((products, customers))
    sorted_customers = customers[first]
    group = np.concatenate([[0], np.cumsum(sorted_customers[1:] != sorted_customers[:-1])]).astype(
        np.int64
    )
    within = order_within_groups(group, np.asarray(scores, dtype=np.float64)[first])
    grouped = group[within]
    rank = np.arange(len(within)) - np.searchsorted(grouped, grouped, side="left") + 1
    return first[within][rank <= k], rank[rank <= k].astype("int64")


def _lists(customer_ids, rank, product_ids, scores, reasons) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": np.asarray(customer_ids, dtype=object),
            "rank": rank,
            "product_id": np.asarray(product_ids, dtype=object),
            "score": np.asarray(scores, dtype="float64"),
            "reason": np.asarray(reasons, dtype=object),
        }
    )


def top_k_of_candidates(
    candidates: pd.DataFrame,
    scores: np.ndarray,
    k: int,
    reasons: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`top_k` for candidates (one row per customer and product) and their scores, in
    numpy: highest score first per customer, ties by product id, customers in id order.
    ``reasons``: each row's reason (default: the candidates' ``reason`` column)."""
    # hash-factorise, then order the (few) distinct ids: no sort of millions of strings
    customer_codes, _ = pd.factorize(candidates["customer_id"], sort=True)
    product_codes, _ = pd.factorize(candidates["product_id"], sort=True)
    keep, rank = top_k_rows(customer_codes, product_codes, scores, k)
    if reasons is None:
        reasons = candidates["reason"].to_numpy(dtype=object)
    return _lists(
        candidates["customer_id"].to_numpy(dtype=object)[keep],
        rank,
        candidates["product_id"].to_numpy(dtype=object)[keep],
        np.asarray(scores, dtype="float64")[keep],
        np.asarray(reasons, dtype=object)[keep],
    )


def top_k(scored: pd.DataFrame, k: int) -> pd.DataFrame:
    """Highest score first per customer, ties by product id; ranks 1..k, each product once."""
    ordered = scored.drop_duplicates(["customer_id", "product_id"]).sort_values(
        ["customer_id", "score", "product_id"], ascending=[True, False, True]
    )
    ordered["rank"] = ordered.groupby("customer_id").cumcount() + 1
    result = ordered[ordered["rank"] <= k]
    return result[["customer_id", "rank", "product_id", "score", "reason"]].reset_index(drop=True)
