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

from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.forecast.model import DemandForecaster
from ml.promotion import MODEL_NAMES, beats_baselines
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.recommend.ranker import Ranker
from ml.recommend.top_k import recommend_for
from shopflow import dbt
from shopflow.jobs.inputs import read_forecast_inputs, read_recommend_inputs
from shopflow.jobs.retrain import train_model
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
    model = DemandForecaster.load(registry.verified_artifact_dir(champion))
    with connect(settings, read_only=True) as con:
        inputs = read_forecast_inputs(con, run_date, scoring=True)
    forecast = model.forecast(inputs.feat, run_date)
    forecast.insert(0, "run_date", run_date)
    forecast["model_version"] = champion.version
    rows = write_predictions(settings, "demand_forecast", run_date, forecast)
    registry.record_serving(FORECAST_MODEL, run_date, champion.version)
    log.info(
        "forecast %d products x %d days with %s",
        forecast["product_id"].nunique(),
        model.params.horizon_days,
        champion.version,
    )
    return {
        "rows": rows,
        "products": int(forecast["product_id"].nunique()),
        "model_version": champion.version,
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
    ranker = Ranker.load(registry.verified_artifact_dir(champion))
    with connect(settings, read_only=True) as con:
        inputs = read_recommend_inputs(con, run_date, settings.active_customer_days, scoring=True)
    (lists,) = recommend_for(
        ranker,
        inputs,
        inputs.active_customers,
        run_date,
        (settings.recommendations_k,),
        allowed=inputs.sellable,
    )
    lists.insert(0, "run_date", run_date)
    lists["model_version"] = champion.version
    rows = write_predictions(settings, "recommendations", run_date, lists)
    registry.record_serving(RANKER_MODEL, run_date, champion.version)
    log.info(
        "recommended for %d customers with %s", lists["customer_id"].nunique(), champion.version
    )
    return {
        "rows": rows,
        "customers": int(lists["customer_id"].nunique()),
        "model_version": champion.version,
    }


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


def ensure_models(settings, run_date: dt.date) -> dict:
    """Train and promote first models for any model name without a champion (reads only)."""
    return {name: ensure_champion(settings, name, run_date) for name in MODEL_NAMES}
