"""Model lifecycle steps the DAGs call: bootstrap champions, compare against baselines."""

from __future__ import annotations

import datetime as dt
import logging

from ml.features import read_forecast_inputs, read_recommend_inputs
from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.registry import Registry
from ml.training import TrainingResult, train_forecaster, train_ranker
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

# primary metric per model and whether higher is better
PRIMARY = {
    FORECAST_MODEL: ("weekly_wape", False),
    RANKER_MODEL: ("ndcg_at_10:all", True),
}


def beats_baselines(model_name: str, results: dict) -> tuple[bool, str]:
    """Does the model beat every baseline on its primary metric? Returns (verdict, reason)."""
    metric, higher_is_better = PRIMARY[model_name]
    if "model" not in results:
        return False, "no holdout evaluation (history too short)"
    mine = results["model"].get(metric)
    worse_than = []
    for name, scores in results.items():
        if name == "model" or not name.startswith("baseline_"):
            continue
        theirs = scores.get(metric)
        if theirs is None or mine is None:
            continue
        better = mine > theirs if higher_is_better else mine < theirs
        if not better:
            worse_than.append(f"{name} {theirs:.4f}")
    if worse_than:
        return False, f"{metric} {mine:.4f} does not beat " + ", ".join(worse_than)
    return True, f"{metric} {mine:.4f} beats every baseline"


def train_model(settings, model_name: str, run_date: dt.date, *, created_by: str) -> TrainingResult:
    registry = Registry(settings)
    with connect(settings, read_only=True) as con:
        if model_name == FORECAST_MODEL:
            inputs = read_forecast_inputs(con, run_date)
        else:
            inputs = read_recommend_inputs(con, run_date, settings.active_customer_days)
    if model_name == FORECAST_MODEL:
        return train_forecaster(inputs, run_date, registry, created_by=created_by)
    return train_ranker(inputs, run_date, registry, created_by=created_by)


def ensure_champion(settings, model_name: str, run_date: dt.date) -> dict:
    """Train and promote a first model when ``model_name`` has no champion yet.

    The first model is promoted even when it does not beat a baseline, because the nightly
    run cannot publish without one; the reason recorded says so, and retraining replaces it
    once a challenger does better.
    """
    registry = Registry(settings)
    champion = registry.champion(model_name)
    if champion is not None:
        return {"model_name": model_name, "champion": champion.version, "trained": False}
    result = train_model(settings, model_name, run_date, created_by="shopflow_nightly bootstrap")
    verdict, why = beats_baselines(model_name, result.metrics)
    reason = f"first model (bootstrap); {why}"
    registry.promote(model_name, result.version.version, actor="shopflow_nightly", reason=reason)
    log.info("%s: promoted %s: %s", model_name, result.version.version, reason)
    return {
        "model_name": model_name,
        "champion": result.version.version,
        "trained": True,
        "beats_baselines": verdict,
        "reason": reason,
    }
