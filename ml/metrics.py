"""Metric definitions the project reports (see docs/design.md, "Metrics").

Pure functions over plain Python / pandas inputs so they can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd


def recall_at_k(recommended: Sequence[str], bought: Iterable[str], k: int = 10) -> float:
    """|top-k ∩ bought| / min(k, |bought|); 0 when nothing was bought."""
    bought_set = set(bought)
    if not bought_set:
        return 0.0
    hits = len(set(recommended[:k]) & bought_set)
    return hits / min(k, len(bought_set))


def ndcg_at_k(recommended: Sequence[str], bought: Iterable[str], k: int = 10) -> float:
    """NDCG@k, binary gain: DCG / ideal DCG (the ideal ranks min(k, |bought|) hits first)."""
    bought_set = set(bought)
    if not bought_set:
        return 0.0
    dcg = sum(
        1.0 / math.log2(position + 2)
        for position, item in enumerate(recommended[:k])
        if item in bought_set
    )
    ideal = sum(1.0 / math.log2(position + 2) for position in range(min(k, len(bought_set))))
    return dcg / ideal


def ranking_metrics(
    recommendations: Mapping[str, Sequence[str]],
    purchases: Mapping[str, Iterable[str]],
    k: int = 10,
) -> dict[str, float]:
    """Recall@k and NDCG@k averaged over customers with at least one purchase.

    Customers without a recommendation list count with an empty list (zero).
    """
    recalls, ndcgs = [], []
    for customer, bought in purchases.items():
        bought = set(bought)
        if not bought:
            continue
        recommended = list(recommendations.get(customer, []))
        recalls.append(recall_at_k(recommended, bought, k))
        ndcgs.append(ndcg_at_k(recommended, bought, k))
    if not recalls:
        return {"recall_at_k": float("nan"), "ndcg_at_k": float("nan"), "customers": 0}
    return {
        "recall_at_k": float(np.mean(recalls)),
        "ndcg_at_k": float(np.mean(ndcgs)),
        "customers": len(recalls),
    }


def ranking_metrics_frame(lists: pd.DataFrame, bought: pd.DataFrame, k: int = 10) -> dict:
    """:func:`ranking_metrics` on frames, vectorised for millions of purchases.

    ``lists``: customer_id, rank (1 = best), product_id, each product at most once per
    customer; ``bought``: customer_id, product_id (duplicates are ignored). Customers without a
    list count with an empty one (zero).
    """
    bought = bought[["customer_id", "product_id"]].drop_duplicates()
    if bought.empty:
        return {"recall_at_k": float("nan"), "ndcg_at_k": float("nan"), "customers": 0}
    sizes = bought.groupby("customer_id").size()
    top = lists.loc[lists["rank"] <= k, ["customer_id", "product_id", "rank"]]
    hits = top.merge(bought, on=["customer_id", "product_id"], how="inner")
    gain = 1.0 / np.log2(hits["rank"].to_numpy(dtype=float) + 1.0)
    dcg = pd.Series(gain, index=hits["customer_id"]).groupby(level=0).sum()
    found = hits.groupby("customer_id").size()
    dcg = dcg.reindex(sizes.index, fill_value=0.0)
    found = found.reindex(sizes.index, fill_value=0)
    depth = np.minimum(sizes.to_numpy(), k)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[depth - 1]
    return {
        "recall_at_k": float(np.mean(found.to_numpy() / depth)),
        "ndcg_at_k": float(np.mean(dcg.to_numpy() / ideal)),
        "customers": int(len(sizes)),
    }


def weekly_wape(frame: pd.DataFrame) -> float:
    """Σ|Σweek y − Σweek ŷ| / Σ y over (product, horizon week).

    ``frame`` has product_id, horizon_days (1..H), y (actual units), units_mean.
    """
    week = (frame["horizon_days"] - 1) // 7
    weekly = frame.assign(week=week).groupby(["product_id", "week"])[["y", "units_mean"]].sum()
    total = weekly["y"].sum()
    if total == 0:
        return float("nan")
    return float((weekly["y"] - weekly["units_mean"]).abs().sum() / total)


def bias(frame: pd.DataFrame) -> float:
    """Σ(ŷ − y) / Σ y."""
    total = frame["y"].sum()
    if total == 0:
        return float("nan")
    return float((frame["units_mean"] - frame["y"]).sum() / total)


def pinball_loss(y: np.ndarray, q: np.ndarray, alpha: float) -> np.ndarray:
    """Elementwise quantile (pinball) loss of quantile ``alpha``."""
    diff = np.asarray(y, dtype=float) - np.asarray(q, dtype=float)
    return np.maximum(alpha * diff, (alpha - 1.0) * diff)


def scaled_pinball(frame: pd.DataFrame) -> float:
    """Pinball loss of p10, p50, p90 on daily units, averaged over the three, divided by Σ y."""
    total = frame["y"].sum()
    if total == 0:
        return float("nan")
    losses = [
        pinball_loss(frame["y"], frame[column], alpha).sum()
        for column, alpha in (("units_p10", 0.1), ("units_p50", 0.5), ("units_p90", 0.9))
    ]
    return float(np.mean(losses) / total)


def coverage(frame: pd.DataFrame) -> float:
    """Share of daily actuals inside [p10, p90]."""
    if frame.empty:
        return float("nan")
    inside = (frame["y"] >= frame["units_p10"]) & (frame["y"] <= frame["units_p90"])
    return float(inside.mean())


def below_p10(frame: pd.DataFrame) -> float:
    """Share of daily actuals below p10 (the lower tail's misses; at most 0.1 when calibrated)."""
    if frame.empty:
        return float("nan")
    return float((frame["y"] < frame["units_p10"]).mean())


def above_p90(frame: pd.DataFrame) -> float:
    """Share of daily actuals above p90 (the upper tail's misses; at most 0.1 when calibrated).

    Coverage = 1 - below_p10 - above_p90. On whole-unit, mostly-zero demand both stay under
    0.1 even for the true quantiles: p10 is 0 on any day with at least a 10 % chance of no
    sale, and no actual falls below 0; the true p90 is the smallest whole number with
    P(y <= p90) >= 0.9, so fewer than 10 % of actuals lie above it. Calibrated quantiles of
    such demand therefore cover more than 80 % of days (more than 90 % where p10 is 0); these
    two shares show which tail a coverage above 0.8 comes from.
    """
    if frame.empty:
        return float("nan")
    return float((frame["y"] > frame["units_p90"]).mean())


def forecast_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """All forecast metrics of one model on one backtest frame."""
    return {
        "weekly_wape": weekly_wape(frame),
        "bias": bias(frame),
        "pinball": scaled_pinball(frame),
        "coverage_p10_p90": coverage(frame),
        "below_p10": below_p10(frame),
        "above_p90": above_p90(frame),
    }
