"""The nightly and retraining steps as plain functions of (settings, business date).

DAG tasks call :func:`run_step` with a step name; tests and the CLI call the step functions
directly. Importing this module is cheap (no pandas, xgboost, dbt or GX): each step imports
what it needs when it runs, so DAG parsing stays fast.

Errors are split in two kinds, because Airflow should retry only one of them:
- *data* errors (bad landing files, failed quality gates, failed dbt tests, missing champion)
  fail the task at once with a plain-words message: retrying bad data wastes the night;
- anything else (a lock timeout, a full disk, a killed process) is an infrastructure error
  and is retried by Airflow.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

log = logging.getLogger(__name__)


def ingest(settings: Settings, run_date: dt.date) -> dict:
    """Validate and load new or changed landing partitions up to the run date."""
    from shopflow.ingest import ingest_landing

    return ingest_landing(settings, run_date).as_dict()


def build_warehouse(settings: Settings, run_date: dt.date) -> dict:
    """`dbt build`: staging, marts and features as of the run date, with dbt tests."""
    from shopflow.dbt import build_warehouse as dbt_build

    return dbt_build(settings, run_date).summary()


def build_warehouse_models(settings: Settings, run_date: dt.date) -> list[dict]:
    """`dbt build` once, reported per model (with its tests) for the DAG's per-model tasks.

    Failed models or tests do not raise here: each model's task fails on its own, so the UI
    shows which model broke at the cost of one cheap task per model instead of one dbt
    invocation per model. dbt failing to run at all still raises.
    """
    from shopflow.dbt import build_warehouse as dbt_build
    from shopflow.dbt import node_reports

    return node_reports(settings, dbt_build(settings, run_date, raise_on_failure=False))


def check_dbt_model(report: dict) -> dict:
    """Fail (data error, not retried) when a model of the build or one of its tests failed."""
    problems = list(report["failed_tests"])
    if report["status"] == "skipped":
        problems.insert(0, "skipped: an upstream model or test failed")
    elif report["status"] != "success":
        problems.insert(0, f"{report['status']}: {(report['message'] or '').strip()[:500]}")
    if problems:
        from airflow.sdk.exceptions import AirflowFailException

        from shopflow.oncall import with_guidance

        message = f"dbt model {report['model']} failed: " + "; ".join(problems)
        raise AirflowFailException(
            with_guidance(message + ". Full log: $SHOPFLOW_HOME/dbt/logs/dbt.log", "DbtBuildError")
        )
    return {"model": report["model"], "seconds": report["seconds"], "tests": report["tests"]}


def validate_marts(settings: Settings, run_date: dt.date) -> dict:
    """Quality gate on the marts after dbt build, before any model reads them."""
    from shopflow.checks import validate_marts as check

    return check(settings, run_date)


def ensure_models(settings: Settings, run_date: dt.date) -> dict:
    """Train and promote first models for any model name without a champion."""
    from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
    from ml.lifecycle import ensure_champion
    from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL

    return {
        name: ensure_champion(settings, name, run_date) for name in (FORECAST_MODEL, RANKER_MODEL)
    }


def score_forecast(settings: Settings, run_date: dt.date) -> dict:
    """Forecast every active product for horizons 1..H with the champion forecaster."""
    from ml.scoring import score_forecast as score

    return score(settings, run_date)


def score_recommendations(settings: Settings, run_date: dt.date) -> dict:
    """Top-K products for every active customer with the champion ranker."""
    from ml.scoring import score_recommendations as score

    return score(settings, run_date)


def validate_predictions(settings: Settings, run_date: dt.date) -> dict:
    """Quality gate on the run date's predictions before anything is published."""
    from shopflow.checks import validate_predictions as check

    return check(settings, run_date)


def publish(settings: Settings, run_date: dt.date) -> dict:
    """Publish the run date's predictions to the exports database and Parquet."""
    from shopflow.publish import publish as do_publish

    return do_publish(settings, run_date)


def check_published(settings: Settings, run_date: dt.date) -> dict:
    """Post-publish checks of newly promoted champions; roll back and republish on failure.

    Skipped (not failed, so never retried) when an upstream failure left nothing to check.
    """
    from ml.rollback import NothingToCheck, check_after_publish

    try:
        return check_after_publish(settings, run_date)
    except NothingToCheck as exc:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"nothing to check: {exc}") from exc


# -- shopflow_retrain: champion/challenger (see ml.lifecycle) --------------------------------
def build_training_sets(settings: Settings, run_date: dt.date) -> dict:
    """Fix the training cutoff (latest built date <= run date) and check its data's gate."""
    from ml.lifecycle import build_training_sets as build

    return build(settings, run_date)


def train_challengers(settings: Settings, run_date: dt.date) -> dict:
    """Train a challenger for each model at the retrain's cutoff."""
    from ml.lifecycle import train_challengers as train

    return train(settings, run_date)


def evaluate_challengers(settings: Settings, run_date: dt.date) -> dict:
    """Challenger, champion and baselines on the same time folds."""
    from ml.lifecycle import evaluate_challengers as evaluate

    return evaluate(settings, run_date)


def promote_or_keep(settings: Settings, run_date: dt.date) -> dict:
    """Promote challengers that pass the promotion policy; record why others do not."""
    from ml.lifecycle import promote_or_keep as decide

    return decide(settings, run_date)


NIGHTLY_STEPS: dict[str, Callable[[Settings, dt.date], dict]] = {
    "ingest_landing": ingest,
    "build_warehouse": build_warehouse,
    "validate_marts": validate_marts,
    "ensure_models": ensure_models,
    "score_forecast": score_forecast,
    "score_recommendations": score_recommendations,
    "validate_predictions": validate_predictions,
    "publish_exports": publish,
    "check_published": check_published,
}

RETRAIN_STEPS: dict[str, Callable[[Settings, dt.date], dict]] = {
    "build_training_sets": build_training_sets,
    "train_challengers": train_challengers,
    "evaluate_challengers": evaluate_challengers,
    "promote_or_keep": promote_or_keep,
}


# Steps only the DAG runs: the in-process night (NIGHTLY_STEPS) builds with a raising build.
DAG_ONLY_STEPS: dict[str, Callable[[Settings, dt.date], object]] = {
    "build_warehouse_models": build_warehouse_models,
}


def data_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the data is wrong": fail at once, never retry."""
    from ml.lifecycle import RetrainNotPossibleError
    from ml.registry import ArtifactIntegrityError
    from ml.rollback import PostPublishCheckError
    from ml.scoring import InvalidPredictionsError, NoChampionError
    from shopflow.dbt import DbtBuildError
    from shopflow.ingest import LandingFormatError
    from shopflow.quality import QualityGateError

    return (
        LandingFormatError,
        QualityGateError,
        DbtBuildError,
        NoChampionError,
        InvalidPredictionsError,
        ArtifactIntegrityError,
        PostPublishCheckError,
        RetrainNotPossibleError,
    )


def run_step(step: str, ds: str) -> dict:
    """Entry point for Airflow tasks: run one step for business date ``ds`` (YYYY-MM-DD)."""
    from shopflow.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    run_date = dt.date.fromisoformat(ds)
    try:
        result = {**NIGHTLY_STEPS, **RETRAIN_STEPS, **DAG_ONLY_STEPS}[step](settings, run_date)
    except Exception as exc:
        if isinstance(exc, data_error_types()):
            from airflow.sdk.exceptions import AirflowFailException

            from shopflow.oncall import failure_message

            message = failure_message(step, ds, exc, settings)  # + what to do, runbook, Data Docs
            log.error("%s for %s failed on data (not retried):\n%s", step, ds, message)
            raise AirflowFailException(message) from exc
        raise
    log.info("%s for %s: %s", step, ds, result)
    return result
