"""Multi-fold, time-based evaluation of model *recipes* for champion/challenger decisions.

A recipe is (the code as it is now, a model's parameters). Both the challenger's and the
champion's recipe are refitted at every fold's cutoff on data up to that cutoff only and scored
on the days that follow it, next to the baselines computed on exactly the same rows. Comparing
recipes rather than the stored artifacts is what keeps the comparison honest: the artifact of a
challenger trained at the latest cutoff has already seen every fold's test days.

Folds (newest first):
- forecasts: origins ``run_date - 28 * i`` for i = 1..n, each scored on its next 28 days;
- recommendations: consecutive feature cutoffs present in the feature marts (the training
  cutoffs, ``training_cutoff_offsets_days`` in dbt_project.yml): train at one cutoff with
  labels from the 28 days after it, test at the next cutoff on the 28 days after that; the
  newest ``RANKER_FOLDS`` such pairs (every fold refits every recipe, so more folds than the
  promotion policy needs would only multiply the retrain's cost).

Only the stable model APIs are used: ``DemandForecaster``/``build_training_frame``/
``forecast_holdout_frame`` and ``Ranker``/``training_frame``/``recommend_for``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ml import metrics
from ml.features import ForecastInputs, RecommendInputs
from ml.forecast import baselines as forecast_baselines
from ml.forecast.model import DemandForecaster, ForecastParams, build_training_frame
from ml.recommend import baselines as recommend_baselines
from ml.recommend.backtest import customers_buying_after, ranking_report, training_frame
from ml.recommend.ranker import LABEL_WINDOW_DAYS, Ranker, RankerParams
from ml.recommend.top_k import recommend_for
from ml.training import forecast_holdout_frame

FOLD_DAYS = 28


@dataclass
class FoldEvaluation:
    """Metrics of every candidate (``challenger``, ``champion``, ``baseline_*``) per fold."""

    folds: list[str] = field(default_factory=list)  # fold cutoff/origin dates, ISO
    per_fold: list[dict[str, dict[str, float]]] = field(default_factory=list)

    def add(self, fold: dt.date, results: dict[str, dict[str, float]]) -> None:
        self.folds.append(fold.isoformat())
        self.per_fold.append(results)

    def mean(self) -> dict[str, dict[str, float]]:
        """Per candidate and metric: the mean over the folds that have a finite value."""
        out: dict[str, dict[str, float]] = {}
        for results in self.per_fold:
            for candidate, scores in results.items():
                for metric, value in scores.items():
                    if value is None or not math.isfinite(float(value)):
                        continue
                    out.setdefault(candidate, {}).setdefault(metric, []).append(float(value))
        return {c: {m: sum(v) / len(v) for m, v in s.items()} for c, s in out.items()}

    def as_dict(self) -> dict:
        return {"folds": self.folds, "per_fold": self.per_fold, "mean": self.mean()}


# -- forecasting ---------------------------------------------------------------------------
def forecast_fold_origins(run_date: dt.date, n_folds: int = 2) -> list[dt.date]:
    """Origins whose 28-day test window ends on or before ``run_date``, newest first."""
    return [run_date - dt.timedelta(days=FOLD_DAYS * i) for i in range(1, n_folds + 1)]


def _forecast_scores(model: DemandForecaster, holdout: pd.DataFrame) -> dict[str, float]:
    predicted = model.predict_rows(holdout)
    scored = holdout[["product_id", "horizon_days", "y"]].copy()
    for column in ("units_mean", "units_p10", "units_p50", "units_p90"):
        scored[column] = predicted[column].to_numpy()
    return metrics.forecast_metrics(scored)


def evaluate_forecast_recipes(
    inputs: ForecastInputs,
    run_date: dt.date,
    recipes: dict[str, ForecastParams],
    *,
    n_folds: int = 2,
    on_phase: Callable[[str], None] | None = None,
) -> FoldEvaluation:
    """Refit each recipe at every fold origin; baselines on the same rows.

    ``recipes`` maps a candidate name (``challenger``, ``champion``) to its parameters; equal
    parameters are fitted once (training is deterministic, the result would be identical).
    ``on_phase`` (optional) is told each fold as it starts, for a progress display.
    """
    feat = inputs.feat
    evaluation = FoldEvaluation()
    origins = forecast_fold_origins(run_date, n_folds)
    for number, origin in enumerate(origins, start=1):
        if on_phase:
            on_phase(f"forecaster evaluation fold {number}/{len(origins)}: origin {origin}")
        some_params = next(iter(recipes.values()))
        holdout = forecast_holdout_frame(feat, origin, some_params.horizon_days)
        training_rows = build_training_frame(feat, origin, some_params)
        if holdout.empty or holdout["y"].sum() == 0 or training_rows.empty:
            continue  # history too short for this fold
        results: dict[str, dict[str, float]] = {}
        fitted: dict[ForecastParams, dict[str, float]] = {}
        for name, params in recipes.items():
            if params not in fitted:
                training = build_training_frame(feat, origin, params)
                fitted[params] = _forecast_scores(DemandForecaster.train(training, params), holdout)
            results[name] = fitted[params]
        history = feat[pd.to_datetime(feat["demand_date"]) <= pd.Timestamp(origin)]
        population = holdout[["product_id", "horizon_days"]]
        for name, baseline in forecast_baselines.BASELINES.items():
            forecast = baseline(history, population, origin)
            joined = holdout[["product_id", "horizon_days", "y"]].merge(
                forecast, on=["product_id", "horizon_days"], how="left"
            )
            # a product the baseline does not forecast counts as forecast zero (docs/design.md)
            results[name] = metrics.forecast_metrics(joined.fillna(0.0))
        evaluation.add(origin, results)
    return evaluation


# -- recommendations -----------------------------------------------------------------------
RANKER_FOLDS = 2


def ranker_folds(
    inputs: RecommendInputs, run_date: dt.date, max_folds: int = RANKER_FOLDS
) -> list[tuple[dt.date, dt.date]]:
    """(train cutoff, test cutoff) pairs from the feature cutoffs, newest test cutoff first;
    at most ``max_folds`` of them."""
    cutoffs = sorted(
        {pd.Timestamp(c).date() for c in inputs.pairs["cutoff_date"].unique()}
        & {pd.Timestamp(c).date() for c in inputs.popularity["cutoff_date"].unique()}
    )
    folds = []
    for train_cutoff, test_cutoff in zip(cutoffs, cutoffs[1:], strict=False):
        labels_known = test_cutoff + dt.timedelta(days=LABEL_WINDOW_DAYS) <= run_date
        if labels_known and train_cutoff + dt.timedelta(days=LABEL_WINDOW_DAYS) <= test_cutoff:
            folds.append((train_cutoff, test_cutoff))
    return sorted(folds, key=lambda f: f[1], reverse=True)[:max_folds]


def _ranking_scores(
    lists: pd.DataFrame, purchases: pd.DataFrame, cutoff: dt.date, k: int
) -> dict[str, float]:
    """NDCG@k / Recall@k (all, repeat, first-time) on the 28 days after ``cutoff``."""
    report = ranking_report(lists, purchases, cutoff, k)
    return {key: value for key, value in report.items() if not key.startswith("customers:")}


def evaluate_ranker_recipes(
    inputs: RecommendInputs,
    run_date: dt.date,
    recipes: dict[str, RankerParams],
    on_phase: Callable[[str], None] | None = None,
) -> FoldEvaluation:
    """Refit each recipe at every fold's train cutoff; baselines on the same test customers.

    ``on_phase`` (optional) is told each fold as it starts, for a progress display."""
    evaluation = FoldEvaluation()
    k = next(iter(recipes.values())).k
    folds = ranker_folds(inputs, run_date)
    for number, (train_cutoff, test_cutoff) in enumerate(folds, start=1):
        if on_phase:
            on_phase(
                f"ranker evaluation fold {number}/{len(folds)}: "
                f"train at {train_cutoff}, test at {test_cutoff}"
            )
        train_customers = customers_buying_after(inputs.purchases, train_cutoff)
        test_customers = customers_buying_after(inputs.purchases, test_cutoff)
        if not train_customers or not test_customers:
            continue
        results: dict[str, dict[str, float]] = {}
        fitted: dict[RankerParams, dict[str, float]] = {}
        for name, params in recipes.items():
            params = RankerParams(**{**params.__dict__, "k": k})
            if params not in fitted:
                ranker = Ranker.train(training_frame(inputs, [train_cutoff], params), params)
                (lists,) = recommend_for(ranker, inputs, test_customers, test_cutoff, (k,))
                fitted[params] = _ranking_scores(lists, inputs.purchases, test_cutoff, k)
            results[name] = fitted[params]
        for name, baseline in recommend_baselines.BASELINES.items():
            extra = {}
            if name in recommend_baselines.NEEDS_COOCCURRENCE:
                extra["cooccurrence"] = inputs.cooccurrence
            lists = baseline(
                inputs.pairs, inputs.popularity, test_customers, test_cutoff, k, **extra
            )
            results[name] = _ranking_scores(lists, inputs.purchases, test_cutoff, k)
        evaluation.add(test_cutoff, results)
    return evaluation
