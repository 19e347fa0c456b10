"""What the DAG tasks call: the nightly and retraining steps as functions of (settings, date).

DAG tasks call :func:`run_step` with a step name; tests, benchmarks and the CLI call the step
functions directly. DAG files import this module at parse time, so it must stay cheap to
import (no pandas, xgboost, dbt or GX, and none of the project's other modules): each step
imports the job or platform module it needs when it runs. This is the ONLY module of the
project whose project imports are lazy; everywhere else in ``ml/`` and ``shopflow/jobs/``
imports sit at module level.

Errors are split in two kinds, because Airflow should retry only one of them:
- *data* errors (bad landing files, failed quality gates, failed dbt tests, missing champion)
  fail the task at once with a plain-words message: retrying bad data wastes the night;
- anything else (a lock timeout, a full disk, a killed process) is an infrastructure error
  and is retried by Airflow.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

# the one-slot pool (its name is the platform's: the Airflow runner creates it); cheap to import
from shopflow.warehouse import WAREHOUSE_POOL

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

# Airflow's default queue ([operators] default_queue): served by every Celery worker
ANY_WORKER_QUEUE = "default"

log = logging.getLogger(__name__)


def default_args() -> dict:
    """Task defaults: infrastructure errors are retried; data errors fail fast (run_step).

    Every task reads or writes SHOPFLOW_HOME unless it says otherwise, so by default it goes
    to the home queue (``SHOPFLOW_HOME_QUEUE``, default ``shopflow_home``), which only Celery
    workers on the machine holding SHOPFLOW_HOME serve; tasks that touch nothing there
    (``dbt_model`` reads its XCom, ``any_task_failed`` only fails the run) set
    ``queue=ANY_WORKER_QUEUE`` and may run on any worker. The LocalExecutor ignores queues.
    """
    from shopflow.settings import load_settings  # cheap: the standard library only

    settings = load_settings()
    return {
        "owner": "shopflow",
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": True,
        # one slot: tasks touching the warehouse DuckDB file never run concurrently
        "pool": WAREHOUSE_POOL,
        "queue": settings.home_queue,
        # mails on-call when SHOPFLOW_ALERT_EMAILS is set (off by default)
        "on_failure_callback": failure_notifier(),
    }


def failure_notifier():
    """The tasks' failure notifier (imports Airflow's SDK: call it from DAG files only)."""
    from shopflow.oncall_notifier import FailureEmailNotifier

    return FailureEmailNotifier()


# -- shopflow_nightly ------------------------------------------------------------------------
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
        upstream = report.get("upstream_failures") or []
        cause = f" ({'; '.join(upstream)})" if upstream else ""
        problems.insert(0, f"skipped: an upstream model or test failed{cause}")
    elif report["status"] != "success":
        problems.insert(0, f"{report['status']}: {(report['message'] or '').strip()[:500]}")
    if problems:
        from airflow.sdk.exceptions import AirflowFailException

        from shopflow.oncall import with_guidance

        message = f"dbt model {report['model']} failed: " + "; ".join(problems)
        raise AirflowFailException(
            with_guidance(
                f"{message}. Full log: {report.get('log_path', '$SHOPFLOW_HOME/dbt/logs/dbt.log')}",
                "DbtBuildError",
            )
        )
    return {"model": report["model"], "seconds": report["seconds"], "tests": report["tests"]}


def _lazy(target: str, doc: str) -> Callable[[Settings, dt.date], dict]:
    """A step that runs ``module:function`` (settings, run_date), importing the module only
    when the step runs: DAG files import this module at parse time."""
    module, _, name = target.partition(":")

    def step(settings: Settings, run_date: dt.date) -> dict:
        return getattr(importlib.import_module(module), name)(settings, run_date)

    step.__name__ = step.__qualname__ = name
    step.__doc__ = f"{doc} ({target})"
    return step


validate_marts = _lazy(
    "shopflow.quality:validate_marts",
    "Quality gate on the marts after dbt build, before any model reads them.",
)
build_training_features = _lazy(
    "shopflow.jobs.nightly:build_training_features",
    "The ranker's training cutoffs for its first model; nothing when it has a champion.",
)
ensure_models = _lazy(
    "shopflow.jobs.nightly:ensure_models",
    "Train and promote first models for any model name without a champion (reads only).",
)
score_forecast = _lazy(
    "shopflow.jobs.nightly:score_forecast",
    "Forecast every active product for horizons 1..H with the champion forecaster.",
)
score_recommendations = _lazy(
    "shopflow.jobs.nightly:score_recommendations",
    "Top-K products for every active customer with the champion ranker.",
)
validate_predictions = _lazy(
    "shopflow.quality:validate_predictions",
    "Quality gate on the run date's predictions before anything is published.",
)
publish = _lazy(
    "shopflow.jobs.rollback:publish_checked",
    "Publish the run date's predictions to the exports database and Parquet, checking a new "
    "champion's outputs before they become visible (rolled back and republished on failure).",
)
record_baselines = _lazy(
    "shopflow.jobs.feedback:record_baselines",
    "The baselines' forecasts and lists for the date, for live accuracy (jobs.feedback).",
)
check_live_accuracy = _lazy(
    "shopflow.jobs.feedback:check_live_accuracy",
    "Roll back a champion that kept losing to the best baseline on live outcomes.",
)
write_report = _lazy(
    "shopflow.report:write_report",
    "The night's static HTML report, $SHOPFLOW_HOME/reports/<date>/index.html.",
)


def check_published(settings: Settings, run_date: dt.date) -> dict:
    """Post-publish checks of newly promoted champions; roll back and republish on failure.

    Skipped (not failed, so never retried) when an upstream failure left nothing to check.
    """
    from shopflow.jobs.rollback import NothingToCheck, check_after_publish

    try:
        return check_after_publish(settings, run_date)
    except NothingToCheck as exc:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"nothing to check: {exc}") from exc


# -- shopflow_retrain: champion/challenger (see shopflow.jobs.retrain) ------------------------
build_training_sets = _lazy(
    "shopflow.jobs.retrain:build_training_sets",
    "Fix the training cutoff (latest built date <= run date) and check its data's gate.",
)
build_retrain_features = _lazy(
    "shopflow.jobs.retrain:build_training_features",
    "The ranker's training cutoffs as of the retrain's cutoff (the retrain's dbt build).",
)
train_challengers = _lazy(
    "shopflow.jobs.retrain:train_challengers",
    "Train a challenger for each model at the retrain's cutoff (reads only).",
)
evaluate_challengers = _lazy(
    "shopflow.jobs.retrain:evaluate_challengers",
    "Challenger, champion and baselines on the same time folds.",
)
promote_or_keep = _lazy(
    "shopflow.jobs.retrain:promote_or_keep",
    "Promote challengers that pass the promotion policy; record why others do not.",
)


NIGHTLY_STEPS: dict[str, Callable[[Settings, dt.date], dict]] = {
    "ingest_landing": ingest,
    "build_warehouse": build_warehouse,
    "validate_marts": validate_marts,
    "build_training_features": build_training_features,
    "ensure_models": ensure_models,
    "score_forecast": score_forecast,
    "score_recommendations": score_recommendations,
    "validate_predictions": validate_predictions,
    "publish_exports": publish,
    "record_baselines": record_baselines,
    "check_live_accuracy": check_live_accuracy,
    "check_published": check_published,
    "write_report": write_report,
}

# keyed by step name; the retrain DAG's build_training_features task runs
# "build_retrain_features" (the nightly's step of that name builds for first models only)
RETRAIN_STEPS: dict[str, Callable[[Settings, dt.date], dict]] = {
    "build_training_sets": build_training_sets,
    "build_retrain_features": build_retrain_features,
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
    from shopflow.dbt import DbtBuildError
    from shopflow.ingest import LandingFormatError
    from shopflow.jobs.inputs import MissingInputsError
    from shopflow.jobs.nightly import InvalidPredictionsError, NoChampionError
    from shopflow.jobs.retrain import RetrainNotPossibleError
    from shopflow.jobs.rollback import PostPublishCheckError
    from shopflow.machine import MachineError
    from shopflow.quality import QualityGateError
    from shopflow.registry import ArtifactIntegrityError

    return (
        MachineError,  # a full disk or a held file: retrying blindly does not help
        LandingFormatError,
        QualityGateError,
        DbtBuildError,
        NoChampionError,
        InvalidPredictionsError,
        ArtifactIntegrityError,
        PostPublishCheckError,
        RetrainNotPossibleError,
        MissingInputsError,
    )


def _note_unpublished(settings: Settings, run_date: dt.date) -> None:
    """Say in the night's log which earlier dates never got published, and note this one."""
    from shopflow.machine import MachineError
    from shopflow.publish import record_run_started, unpublished_dates
    from shopflow.warehouse import WarehouseBusyError

    try:
        missing = [d for d in unpublished_dates(settings) if d != run_date]
    except (WarehouseBusyError, MachineError) as exc:  # the step itself will say it plainly
        log.warning("could not list unpublished dates: %s", exc)
        missing = []
    if missing:
        log.warning(
            "dates that started but were never published: %s; rerun each with "
            "`shopflow run --date D`",
            ", ".join(d.isoformat() for d in missing),
        )
    record_run_started(settings, run_date)


def run_step(step: str, ds: str) -> dict:
    """Entry point for Airflow tasks: run one step for business date ``ds`` (YYYY-MM-DD)."""
    from shopflow.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    run_date = dt.date.fromisoformat(ds)
    if step == "ingest_landing":  # the first step of a night
        _note_unpublished(settings, run_date)
    try:
        result = {**NIGHTLY_STEPS, **RETRAIN_STEPS, **DAG_ONLY_STEPS}[step](settings, run_date)
    except Exception as exc:
        from shopflow.machine import explain

        error = explain(exc) or exc  # a full disk or a held file, said plainly
        if isinstance(error, data_error_types()):
            from airflow.sdk.exceptions import AirflowFailException

            from shopflow.machine import MachineError
            from shopflow.oncall import failure_message
            from shopflow.summary import emit_summary

            message = failure_message(step, ds, error, settings)  # + what to do, runbook, links
            cause = "on the machine" if isinstance(error, MachineError) else "on data"
            # stderr first: a task log on a full disk would cut it or lose it
            emit_summary(f"{step} for {ds} failed {cause} (not retried):\n{message}", log)
            raise AirflowFailException(message) from exc
        raise
    log.info("%s for %s: %s", step, ds, result)
    return result
