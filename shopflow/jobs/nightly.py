"""The nightly run's model steps: first champions, scoring, and the ranker's training cutoffs.

Scoring writes the warehouse's ``predictions`` schema (one partition per run_date, replaced
on rerun) for validation and publishing. The first models are trained only by reading: the
dbt build of the ranker's training cutoffs is a step of its own
(:func:`build_training_features`, the ``build_training_features`` task), before
``ensure_models``.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from ml.forecast.baselines import HISTORY_DAYS, BaselineForecaster
from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.promotion import MODEL_NAMES, beats_baselines, choose_first, incompatibility
from ml.recommend.baselines import (
    ABSENT_CUSTOMERS_BASELINE,
    NEW_CUSTOMER,
    BaselineRecommender,
    fallback_lists,
    known_customers,
)
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.recommend.top_k import recommend_for
from ml.serving import baseline_of, load_servable, served_label
from shopflow import dbt
from shopflow.jobs.inputs import read_forecast_inputs, read_recommend_inputs
from shopflow.jobs.retrain import register_baseline, train_model
from shopflow.registry import ModelVersion, Registry
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

PREDICTION_TABLES = {
    "recommendations": """
        run_date date not null,
        customer_id varchar not null,
        rank integer not null,
        product_id varchar not null,
        score double not null,
        reason varchar not null,
        model_version varchar not null
    """,
    "demand_forecast": """
        run_date date not null,
        product_id varchar not null,
        forecast_date date not null,
        horizon_days integer not null,
        units_mean double not null,
        units_p10 double not null,
        units_p50 double not null,
        units_p90 double not null,
        model_version varchar not null
    """,
}


class NoChampionError(RuntimeError):
    """Scoring was asked for a model that has no champion."""


def champion_or_fail(
    registry: Registry, model_name: str, run_date: dt.date | None = None
) -> ModelVersion:
    """The version that scores ``model_name`` for ``run_date``: the one serving that date by
    the registry's history (:meth:`Registry.serving_for`), or with no date the current
    champion; :class:`NoChampionError` when there is none."""
    if run_date is None:
        champion = registry.champion(model_name)
    else:
        champion, rule = registry.serving_for(model_name, run_date)
        if champion is not None:
            log.info("%s for %s: scoring with %s: %s", model_name, run_date, champion.version, rule)
            if "after that date" in rule:
                log.warning("%s for %s: %s", model_name, run_date, rule)
    if champion is None:
        raise NoChampionError(
            f"{model_name} has no champion model; run `shopflow retrain --date <date>` "
            "(or let the nightly run train the first one)"
        )
    return champion


class InvalidPredictionsError(RuntimeError):
    """A model produced predictions that can never be published (NaN, infinite, missing)."""


def check_predictions(table: str, frame: pd.DataFrame) -> None:
    """Refuse NaN or infinite values before they reach the predictions table."""
    numeric = frame.select_dtypes("number")
    bad = ~np.isfinite(numeric.to_numpy(dtype="float64"))
    if bad.any():
        columns = sorted(numeric.columns[bad.any(axis=0)])
        versions = sorted(frame.get("model_version", pd.Series(["?"])).astype(str).unique())
        raise InvalidPredictionsError(
            f"{table}: {int(bad.any(axis=1).sum())} of {len(frame)} rows have NaN or infinite "
            f"values in {', '.join(columns)} (model version {', '.join(versions)}); "
            "nothing was written. Roll back the model: shopflow models rollback <model>"
        )


def write_predictions(settings, table: str, run_date: dt.date, frame: pd.DataFrame) -> int:
    """Replace the run_date partition of predictions.<table> (one transaction)."""
    columns = [line.split()[0] for line in PREDICTION_TABLES[table].strip().splitlines()]
    check_predictions(table, frame[columns])
    with connect(settings) as con:
        con.execute("create schema if not exists predictions")
        con.execute(f"create table if not exists predictions.{table} ({PREDICTION_TABLES[table]})")
        con.execute("begin transaction")
        try:
            con.execute(f"delete from predictions.{table} where run_date = ?", [run_date])
            con.register("incoming", frame[columns])
            con.execute(f"insert into predictions.{table} select * from incoming")
            con.unregister("incoming")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    return len(frame)


def score_forecast(
    settings,
    run_date: dt.date,
    registry: Registry | None = None,
    *,
    current_champion: bool = False,
) -> dict:
    """Forecast every active product for horizons 1..H with the forecaster serving the date
    (``current_champion``: with today's champion, whatever served the date before)."""
    registry = registry or Registry(settings)
    champion = champion_or_fail(registry, FORECAST_MODEL, None if current_champion else run_date)
    model = load_servable(FORECAST_MODEL, registry.verified_artifact_dir(champion))
    baseline = isinstance(model, BaselineForecaster)
    with connect(settings, read_only=True) as con:
        inputs = read_forecast_inputs(
            con, run_date, scoring=True, history_days=HISTORY_DAYS if baseline else 1
        )
    forecast = model.forecast(inputs.feat, run_date)
    forecast.insert(0, "run_date", run_date)
    label = served_label(champion)
    forecast["model_version"] = label
    rows = write_predictions(settings, "demand_forecast", run_date, forecast)
    registry.record_serving(FORECAST_MODEL, run_date, champion.version)
    log.info("forecast %d products with %s", forecast["product_id"].nunique(), label)
    return {
        "rows": rows,
        "products": int(forecast["product_id"].nunique()),
        "model_version": label,
        **_serving_note(champion),
    }


def score_recommendations(
    settings,
    run_date: dt.date,
    registry: Registry | None = None,
    *,
    current_champion: bool = False,
) -> dict:
    """Top-K products for every active customer with the ranker serving the date
    (``current_champion``: with today's champion, whatever served the date before)."""
    registry = registry or Registry(settings)
    champion = champion_or_fail(registry, RANKER_MODEL, None if current_champion else run_date)
    ranker = load_servable(RANKER_MODEL, registry.verified_artifact_dir(champion))
    with connect(settings, read_only=True) as con:
        inputs = read_recommend_inputs(con, run_date, settings.active_customer_days, scoring=True)
    k = settings.recommendations_k
    if isinstance(ranker, BaselineRecommender):
        lists = ranker.recommend_for(
            inputs, inputs.active_customers, run_date, k, allowed=inputs.sellable
        )
    else:
        (lists,) = recommend_for(
            ranker, inputs, inputs.active_customers, run_date, (k,), allowed=inputs.sellable
        )
    # every known customer gets a list, and visitors without a history get NEW_CUSTOMER's
    active = set(inputs.active_customers)
    absent = [c for c in known_customers(inputs, run_date) if c not in active]
    fallback = fallback_lists(inputs, absent, run_date, k, allowed=inputs.sellable)
    lists = pd.concat([lists, fallback], ignore_index=True)
    lists.insert(0, "run_date", run_date)
    label = served_label(champion)
    lists["model_version"] = label
    rows = write_predictions(settings, "recommendations", run_date, lists)
    registry.record_serving(RANKER_MODEL, run_date, champion.version)
    log.info(
        "recommended for %d active customers with %s, %d others with %s, and %s",
        len(active),
        label,
        len(absent),
        ABSENT_CUSTOMERS_BASELINE,
        NEW_CUSTOMER,
    )
    return {
        "rows": rows,
        "customers": int(lists["customer_id"].nunique()),
        "active_customers": len(active),
        "other_known_customers": len(absent),
        "model_version": label,
        **_serving_note(champion),
    }


def _serving_note(champion: ModelVersion) -> dict:
    """What the night's output says about a serving baseline (nothing for a trained model)."""
    name = baseline_of(champion)
    if name is None:
        return {}
    log.warning("%s serves %s: %s", champion.model_name, name, champion.status_reason)
    return {"serving": name, "why": champion.status_reason}


# -- first models (bootstrap) ----------------------------------------------------------------
def build_training_features(settings, run_date: dt.date) -> dict:
    """Add the ranker's training cutoffs as of ``run_date`` to the per-cutoff features when
    the ranker has no champion yet (``ensure_models`` is about to train it); otherwise do
    nothing. The forecaster trains on ``feat_product_daily``, which the nightly build has."""
    champion = Registry(settings).champion(RANKER_MODEL)
    if champion is not None:
        return {"built": False, "reason": f"{RANKER_MODEL} has a champion ({champion.version})"}
    return {"built": True, **dbt.build_training_features(settings, run_date).summary()}


def ensure_champion(settings, model_name: str, run_date: dt.date) -> dict:
    """Train a first model when ``model_name`` has no champion yet, and promote what serves
    best on its holdout: the trained model if it beats every baseline, otherwise the best
    baseline (registered as a baseline version, ``ml.serving``), the trained model staying a
    challenger. The reason recorded, logged and returned says which and why; retraining
    replaces a serving baseline once a challenger beats it.

    A champion this code cannot score (trained on another feature schema: an upgrade added a
    feature) is replaced the same way, so that an upgraded deployment's next night serves
    instead of failing; the old version stays in the registry.
    """
    registry = Registry(settings)
    champion = registry.champion(model_name)
    stale = incompatibility(model_name, champion) if champion is not None else None
    if champion is not None and stale is None:
        return {"model_name": model_name, "champion": champion.version, "trained": False}
    if stale:
        log.warning("%s: %s; training a replacement", model_name, stale)
    result = train_model(settings, model_name, run_date, created_by="shopflow_nightly bootstrap")
    trained = result.version.version
    serves, reason = choose_first(model_name, result.metrics)
    if stale:
        reason = f"{stale}, so it was replaced: {reason}"
    if serves == "model":
        registry.promote(model_name, trained, actor="shopflow_nightly", reason=reason)
        log.info("%s: promoted %s: %s", model_name, trained, reason)
        return {
            "model_name": model_name,
            "champion": trained,
            "trained": True,
            "beats_baselines": beats_baselines(model_name, result.metrics)[0],
            "serving": "model",
            "reason": reason,
        }
    version = register_baseline(
        settings,
        model_name,
        serves,
        run_date,
        result.metrics,
        reason=reason,
        created_by="shopflow_nightly bootstrap",
    )
    registry.promote(model_name, version.version, actor="shopflow_nightly", reason=reason)
    registry.record_decision(
        model_name, trained, action="kept_challenger", actor="shopflow_nightly", reason=reason
    )
    log.warning("%s: %s serves instead of the trained %s: %s", model_name, serves, trained, reason)
    return {
        "model_name": model_name,
        "champion": version.version,
        "trained": True,
        "beats_baselines": False,
        "serving": serves,
        "challenger": trained,
        "reason": reason,
    }


def ensure_models(settings, run_date: dt.date) -> dict:
    """Train and promote first models for any model name without a champion (reads only)."""
    return {name: ensure_champion(settings, name, run_date) for name in MODEL_NAMES}
