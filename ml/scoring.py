"""Nightly scoring with the champion models; results land in the warehouse's ``predictions``
schema (one partition per run_date, replaced on rerun) for validation and publishing."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from ml.features import read_forecast_inputs, read_recommend_inputs
from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.forecast.model import DemandForecaster
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.recommend.ranker import Ranker
from ml.recommend.top_k import recommend_for
from ml.registry import ModelVersion, Registry
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


def champion_or_fail(registry: Registry, model_name: str) -> ModelVersion:
    champion = registry.champion(model_name)
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
    import numpy as np

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


def score_forecast(settings, run_date: dt.date, registry: Registry | None = None) -> dict:
    registry = registry or Registry(settings)
    champion = champion_or_fail(registry, FORECAST_MODEL)
    model = DemandForecaster.load(registry.verified_artifact_dir(champion))
    with connect(settings, read_only=True) as con:
        inputs = read_forecast_inputs(con, run_date, scoring=True)
    forecast = model.forecast(inputs.feat, run_date)
    forecast.insert(0, "run_date", run_date)
    forecast["model_version"] = champion.version
    rows = write_predictions(settings, "demand_forecast", run_date, forecast)
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


def score_recommendations(settings, run_date: dt.date, registry: Registry | None = None) -> dict:
    registry = registry or Registry(settings)
    champion = champion_or_fail(registry, RANKER_MODEL)
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
    log.info(
        "recommended for %d customers with %s", lists["customer_id"].nunique(), champion.version
    )
    return {
        "rows": rows,
        "customers": int(lists["customer_id"].nunique()),
        "model_version": champion.version,
    }
