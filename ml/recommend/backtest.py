"""Temporal backtest of the recommender against the baselines (docs/design.md, "Metrics").

Train on everything up to the test cutoff (the ranker learns at the feature cutoffs whose
28-day label window ends by the test cutoff), test on each customer's purchases in the 28
days after it; every baseline is computed in the same run on the same customers.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml import metrics
from ml.recommend import baselines as recommend_baselines
from ml.recommend.candidate_features import candidate_chunks
from ml.recommend.ranker import (
    LABEL_WINDOW_DAYS,
    Ranker,
    RankerParams,
    label_candidates,
    sample_negatives,
)
from ml.recommend.top_k import recommend_for

CANDIDATE_DEPTH = 100  # the candidate stage is judged by its recall@100


def purchases_between(purchases: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Purchases with start < ordered_date <= end."""
    dates = pd.to_datetime(purchases["ordered_date"])
    return purchases[(dates > pd.Timestamp(start)) & (dates <= pd.Timestamp(end))]


def customers_buying_after(purchases: pd.DataFrame, cutoff: dt.date) -> list[str]:
    """Customers with a purchase in the label window after the cutoff, sorted."""
    window = purchases_between(purchases, cutoff, cutoff + dt.timedelta(days=LABEL_WINDOW_DAYS))
    return sorted(set(window["customer_id"]))


def ranking_report(
    lists: pd.DataFrame, purchases: pd.DataFrame, cutoff: dt.date, k: int
) -> dict[str, float]:
    """Recall@k / NDCG@k overall and for repeat vs first-time purchases after the cutoff.

    A purchase is a repeat when the customer bought the product on or before the cutoff.
    """
    dates = pd.to_datetime(purchases["ordered_date"])
    end = pd.Timestamp(cutoff + dt.timedelta(days=LABEL_WINDOW_DAYS))
    window = purchases.loc[(dates > pd.Timestamp(cutoff)) & (dates <= end)]
    window = window[["customer_id", "product_id"]].drop_duplicates()
    before = purchases.loc[dates <= pd.Timestamp(cutoff), ["customer_id", "product_id"]]
    seen = before[before["customer_id"].isin(set(window["customer_id"]))].drop_duplicates()
    is_repeat = (
        window.merge(seen.assign(seen=True), on=["customer_id", "product_id"], how="left")["seen"]
        .fillna(False)
        .astype(bool)
        .to_numpy()
    )
    report = {}
    for segment, part in (
        ("all", window),
        ("repeat", window[is_repeat]),
        ("first_time", window[~is_repeat]),
    ):
        scores = metrics.ranking_metrics_frame(lists, part, k)
        report[f"recall_at_{k}:{segment}"] = scores["recall_at_k"]
        report[f"ndcg_at_{k}:{segment}"] = scores["ndcg_at_k"]
        report[f"customers:{segment}"] = scores["customers"]
    return report


def feature_cutoffs(inputs) -> list[dt.date]:
    """Cutoffs present in both per-cutoff feature marts, oldest first."""
    pairs = {pd.Timestamp(c).date() for c in inputs.pairs["cutoff_date"].unique()}
    popularity = {pd.Timestamp(c).date() for c in inputs.popularity["cutoff_date"].unique()}
    return sorted(pairs & popularity)


def training_cutoffs(inputs, labels_until: dt.date) -> list[dt.date]:
    """Feature cutoffs whose whole 28-day label window ends on or before ``labels_until``."""
    return [
        c
        for c in feature_cutoffs(inputs)
        if c + dt.timedelta(days=LABEL_WINDOW_DAYS) <= labels_until
    ]


def sample_query_groups(customers: list[str], n: int, seed: int) -> list[str]:
    """At most ``n`` of ``customers`` (all when n <= 0 or fewer), a seeded sample, sorted."""
    if n <= 0 or len(customers) <= n:
        return customers
    picked = np.random.default_rng(seed).choice(len(customers), size=n, replace=False)
    return sorted(customers[i] for i in picked)


def training_frame(
    inputs,
    cutoffs: list[dt.date],
    params: RankerParams,
    on_phase: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Labelled candidates of the customers who bought after each cutoff, all cutoffs stacked.

    A customer is one query group per cutoff (``customer_id@cutoff``). At most
    ``params.max_query_groups_per_cutoff`` customers per cutoff (a seeded sample); candidates
    are built a chunk of customers at a time and reduced to what the ranker trains on at once
    (groups with a positive, ``params.negatives_per_customer`` negatives each), so memory is
    bounded by one chunk, not by the shop. ``on_phase`` (optional) is told each cutoff as
    it starts, for a progress display.
    """
    frames = []
    for number, cutoff in enumerate(cutoffs, start=1):
        if on_phase:
            on_phase(f"ranker training candidates, cutoff {number}/{len(cutoffs)}: {cutoff}")
        customers = sample_query_groups(
            customers_buying_after(inputs.purchases, cutoff),
            params.max_query_groups_per_cutoff,
            params.seed + cutoff.toordinal(),
        )
        # the label window's purchases, cut once per cutoff rather than once per chunk
        window = purchases_between(
            inputs.purchases, cutoff, cutoff + dt.timedelta(days=LABEL_WINDOW_DAYS)
        )
        chunks = candidate_chunks(inputs, customers, cutoff, params)
        for number, candidates in enumerate(chunks):
            labelled = label_candidates(candidates, window, cutoff)
            labelled = labelled[labelled.groupby("customer_id")["label"].transform("max") > 0]
            labelled = sample_negatives(
                labelled, params.negatives_per_customer, params.seed + number
            )
            labelled["customer_id"] = labelled["customer_id"] + f"@{cutoff.isoformat()}"
            frames.append(labelled)
    if not frames:
        raise ValueError(f"no purchases after the training cutoffs {cutoffs}")
    return pd.concat(frames, ignore_index=True)


@dataclass
class BacktestResult:
    """Metrics per candidate (``model`` and ``baseline_*``) plus run facts."""

    test_cutoff: dt.date
    train_cutoffs: list[dt.date]
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)


def backtest(
    inputs,
    run_date: dt.date,
    params: RankerParams,
    on_phase: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Hold out the 28 days up to ``run_date``: fit before, score and compare on them.

    ``on_phase`` (optional) is told each step as it starts, for a progress display."""
    phase = on_phase or (lambda text: None)
    test_cutoff = run_date - dt.timedelta(days=LABEL_WINDOW_DAYS)
    cutoffs = training_cutoffs(inputs, test_cutoff)
    result = BacktestResult(test_cutoff, cutoffs)
    test_customers = customers_buying_after(inputs.purchases, test_cutoff)
    if not cutoffs or not test_customers:
        return result
    started = time.perf_counter()
    training = training_frame(inputs, cutoffs, params, on_phase)
    phase(f"ranker fit on {len(training):,} rows")
    ranker = Ranker.train(training, params)
    result.facts["train_seconds"] = time.perf_counter() - started
    result.facts["train_rows"] = float(len(training))

    started = time.perf_counter()
    k = params.k
    phase(f"ranker scoring {len(test_customers):,} test customers")
    # the deeper list is the ceiling the ranker works under: the candidates' recall@100
    lists, deep_lists = recommend_for(
        ranker, inputs, test_customers, test_cutoff, (k, CANDIDATE_DEPTH)
    )
    result.facts["score_seconds"] = time.perf_counter() - started
    result.facts["test_customers"] = float(len(test_customers))

    result.results["model"] = ranking_report(lists, inputs.purchases, test_cutoff, k)
    deep = ranking_report(deep_lists, inputs.purchases, test_cutoff, CANDIDATE_DEPTH)
    for segment in ("all", "repeat", "first_time"):
        result.results["model"][f"candidate_recall_at_{CANDIDATE_DEPTH}:{segment}"] = deep[
            f"recall_at_{CANDIDATE_DEPTH}:{segment}"
        ]
    phase("recommendation baselines")
    for name, baseline in recommend_baselines.BASELINES.items():
        extra = {}
        if name in recommend_baselines.NEEDS_COOCCURRENCE:
            extra["cooccurrence"] = inputs.cooccurrence
        lists = baseline(inputs.pairs, inputs.popularity, test_customers, test_cutoff, k, **extra)
        result.results[name] = ranking_report(lists, inputs.purchases, test_cutoff, k)
    return result


def format_table(result: BacktestResult, k: int = 10) -> str:
    """One plain-text table: a row per model and baseline, columns per metric and segment."""
    columns = [
        (f"recall_at_{k}:all", f"R@{k}"),
        (f"ndcg_at_{k}:all", f"NDCG@{k}"),
        (f"recall_at_{k}:repeat", f"R@{k} rep"),
        (f"ndcg_at_{k}:repeat", f"NDCG@{k} rep"),
        (f"recall_at_{k}:first_time", f"R@{k} new"),
        (f"ndcg_at_{k}:first_time", f"NDCG@{k} new"),
        (f"candidate_recall_at_{CANDIDATE_DEPTH}:all", f"cand R@{CANDIDATE_DEPTH}"),
    ]
    width = max([len(name) for name in result.results] + [10])
    lines = [
        f"test cutoff {result.test_cutoff} (+{LABEL_WINDOW_DAYS} days); trained at "
        + ", ".join(c.isoformat() for c in result.train_cutoffs),
        f"{'model':<{width}} " + " ".join(f"{label:>12}" for _, label in columns),
    ]
    for name, scores in result.results.items():
        cells = []
        for key, _ in columns:
            value = scores.get(key)
            cells.append(f"{value:>12.4f}" if value is not None else f"{'':>12}")
        lines.append(f"{name:<{width}} " + " ".join(cells))
    model = result.results.get("model", {})
    lines.append(
        "customers: "
        + ", ".join(
            f"{segment} {int(model.get(f'customers:{segment}', 0))}"
            for segment in ("all", "repeat", "first_time")
        )
    )
    if result.facts:
        lines.append("facts: " + ", ".join(f"{k} {v:.1f}" for k, v in result.facts.items()))
    return "\n".join(lines)
