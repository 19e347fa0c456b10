"""Train, evaluate and register both models, as of a business date.

Evaluation is time-based and honest: the candidate configuration is fitted at an earlier
cutoff and scored on the 28 days that followed it, next to the baselines computed on the
same holdout; the version that is registered is then refitted on everything up to the date.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml import metrics
from ml.features import ForecastInputs, RecommendInputs, frame_fingerprint
from ml.forecast import baselines as forecast_baselines
from ml.forecast.model import FEATURES as FORECAST_FEATURES
from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.forecast.model import (
    DemandForecaster,
    ForecastParams,
    active_at_origin,
    build_training_frame,
    expand_horizons,
)
from ml.recommend import baselines as recommend_baselines
from ml.recommend.ranker import FEATURES as RANKER_FEATURES
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.recommend.ranker import Ranker, RankerParams, build_candidates, label_candidates
from ml.registry import ModelVersion, Registry

log = logging.getLogger(__name__)
HOLDOUT_DAYS = 28


@dataclass
class TrainingResult:
    version: ModelVersion
    metrics: dict


# -- forecasting ---------------------------------------------------------------------------
def forecast_holdout_frame(feat: pd.DataFrame, origin: dt.date, horizon: int) -> pd.DataFrame:
    """Population (products active at origin) x horizons with actual units y (0 if unsold)."""
    origin_rows = active_at_origin(
        feat[pd.to_datetime(feat["demand_date"]) == pd.Timestamp(origin)], 90
    )
    rows = expand_horizons(origin_rows, horizon)
    actual = feat[["product_id", "demand_date", "units_sold"]].rename(
        columns={"demand_date": "forecast_date", "units_sold": "y"}
    )
    actual["forecast_date"] = pd.to_datetime(actual["forecast_date"])
    rows = rows.merge(actual, on=["product_id", "forecast_date"], how="left")
    rows["y"] = rows["y"].fillna(0.0)
    return rows


def evaluate_forecaster(
    feat: pd.DataFrame, origin: dt.date, params: ForecastParams
) -> dict[str, dict[str, float]]:
    """Fit at ``origin``, score the following H days; baselines on the same rows."""
    holdout = forecast_holdout_frame(feat, origin, params.horizon_days)
    if holdout.empty:
        return {}
    model = DemandForecaster.train(build_training_frame(feat, origin, params), params)
    predicted = model.predict_rows(holdout)
    results = {"model": metrics.forecast_metrics(holdout.assign(**_preds(predicted)))}
    history = feat[pd.to_datetime(feat["demand_date"]) <= pd.Timestamp(origin)]
    population = holdout[["product_id", "horizon_days"]]
    for name, baseline in forecast_baselines.BASELINES.items():
        forecast = baseline(history, population, origin)
        joined = holdout[["product_id", "horizon_days", "y"]].merge(
            forecast, on=["product_id", "horizon_days"], how="left"
        )
        results[name] = metrics.forecast_metrics(joined)
    return results


def _preds(predicted: pd.DataFrame) -> dict:
    return {
        c: predicted[c].to_numpy() for c in ("units_mean", "units_p10", "units_p50", "units_p90")
    }


def train_forecaster(
    inputs: ForecastInputs,
    run_date: dt.date,
    registry: Registry,
    *,
    params: ForecastParams | None = None,
    created_by: str = "shopflow",
) -> TrainingResult:
    params = params or ForecastParams()
    evaluation = evaluate_forecaster(
        inputs.feat, run_date - dt.timedelta(days=HOLDOUT_DAYS), params
    )
    training = build_training_frame(inputs.feat, run_date, params)
    model = DemandForecaster.train(training, params)
    with tempfile.TemporaryDirectory(dir=registry.settings.tmp_dir) as tmp:
        staged = Path(tmp) / "artifact"
        model.save(staged)
        version = registry.register(
            FORECAST_MODEL,
            staged,
            cutoff_date=run_date,
            params=params.__dict__,
            feature_schema=FORECAST_FEATURES,
            metrics={
                "holdout_origin": (run_date - dt.timedelta(days=HOLDOUT_DAYS)).isoformat(),
                "primary_metric": "weekly_wape",
                "results": evaluation,
            },
            data_fingerprint=frame_fingerprint(training),
            created_by=created_by,
        )
    return TrainingResult(version, evaluation)


# -- recommendations -----------------------------------------------------------------------
def purchases_between(purchases: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Purchases with start < ordered_date <= end."""
    dates = pd.to_datetime(purchases["ordered_date"])
    return purchases[(dates > pd.Timestamp(start)) & (dates <= pd.Timestamp(end))]


def _bought_sets(window: pd.DataFrame) -> dict[str, set[str]]:
    return {c: set(g["product_id"]) for c, g in window.groupby("customer_id")}


def ranking_report(
    lists: pd.DataFrame, purchases: pd.DataFrame, cutoff: dt.date, k: int
) -> dict[str, float]:
    """Recall@k / NDCG@k overall and for repeat vs first-time purchases."""
    window = purchases_between(purchases, cutoff, cutoff + dt.timedelta(days=HOLDOUT_DAYS))
    before = purchases_between(purchases, dt.date(1900, 1, 1), cutoff)
    seen = set(zip(before["customer_id"], before["product_id"], strict=True))
    is_repeat = [
        (c, p) in seen for c, p in zip(window["customer_id"], window["product_id"], strict=True)
    ]
    recommended = {
        c: list(g.sort_values("rank")["product_id"]) for c, g in lists.groupby("customer_id")
    }
    report = {}
    for segment, part in (
        ("all", window),
        ("repeat", window[is_repeat]),
        ("first_time", window[[not r for r in is_repeat]]),
    ):
        scores = metrics.ranking_metrics(recommended, _bought_sets(part), k)
        report[f"recall_at_{k}:{segment}"] = scores["recall_at_k"]
        report[f"ndcg_at_{k}:{segment}"] = scores["ndcg_at_k"]
        report[f"customers:{segment}"] = scores["customers"]
    return report


def evaluate_ranker(inputs: RecommendInputs, run_date: dt.date, params: RankerParams) -> dict:
    """Fit at run_date-56 (labels to run_date-28), evaluate at run_date-28 on the next 28 days."""
    train_cutoff = run_date - dt.timedelta(days=2 * HOLDOUT_DAYS)
    test_cutoff = run_date - dt.timedelta(days=HOLDOUT_DAYS)
    train_customers = sorted(
        set(purchases_between(inputs.purchases, train_cutoff, test_cutoff)["customer_id"])
    )
    test_customers = sorted(
        set(purchases_between(inputs.purchases, test_cutoff, run_date)["customer_id"])
    )
    if not train_customers or not test_customers:
        return {}
    candidates = build_candidates(
        inputs.pairs, inputs.popularity, train_customers, train_cutoff, params
    )
    ranker = Ranker.train(label_candidates(candidates, inputs.purchases, train_cutoff), params)
    test_candidates = build_candidates(
        inputs.pairs, inputs.popularity, test_customers, test_cutoff, params
    )
    results = {
        "model": ranking_report(
            ranker.recommend(test_candidates), inputs.purchases, test_cutoff, params.k
        )
    }
    top100 = Ranker(ranker.booster, RankerParams(**{**params.__dict__, "k": 100}))
    results["model"]["candidate_recall_at_100:all"] = ranking_report(
        top100.recommend(test_candidates), inputs.purchases, test_cutoff, 100
    )["recall_at_100:all"]
    for name, baseline in recommend_baselines.BASELINES.items():
        lists = baseline(inputs.pairs, inputs.popularity, test_customers, test_cutoff, params.k)
        results[name] = ranking_report(lists, inputs.purchases, test_cutoff, params.k)
    return results


def train_ranker(
    inputs: RecommendInputs,
    run_date: dt.date,
    registry: Registry,
    *,
    params: RankerParams | None = None,
    created_by: str = "shopflow",
) -> TrainingResult:
    params = params or RankerParams()
    evaluation = evaluate_ranker(inputs, run_date, params)
    frames = []
    for offset in (HOLDOUT_DAYS, 2 * HOLDOUT_DAYS):
        cutoff = run_date - dt.timedelta(days=offset)
        customers = sorted(
            set(
                purchases_between(
                    inputs.purchases, cutoff, cutoff + dt.timedelta(days=HOLDOUT_DAYS)
                )["customer_id"]
            )
        )
        if customers:
            candidates = build_candidates(
                inputs.pairs, inputs.popularity, customers, cutoff, params
            )
            labelled = label_candidates(candidates, inputs.purchases, cutoff)
            labelled["customer_id"] = labelled["customer_id"] + f"@{cutoff.isoformat()}"
            frames.append(labelled)
    if not frames:
        raise ValueError(f"no purchases in the {2 * HOLDOUT_DAYS} days before {run_date}")
    training = pd.concat(frames, ignore_index=True)
    ranker = Ranker.train(training, params)
    with tempfile.TemporaryDirectory(dir=registry.settings.tmp_dir) as tmp:
        staged = Path(tmp) / "artifact"
        ranker.save(staged)
        version = registry.register(
            RANKER_MODEL,
            staged,
            cutoff_date=run_date,
            params=params.__dict__,
            feature_schema=RANKER_FEATURES,
            metrics={
                "holdout_cutoff": (run_date - dt.timedelta(days=HOLDOUT_DAYS)).isoformat(),
                "primary_metric": f"ndcg_at_{params.k}:all",
                "results": evaluation,
            },
            data_fingerprint=frame_fingerprint(training),
            created_by=created_by,
        )
    return TrainingResult(version, evaluation)
