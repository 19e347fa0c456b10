"""
### shopflow_nightly

Turns one business date's landing data into the published **recommendations** and
**demand forecasts**. One run per business date D (UTC): run id `nightly__D` (scheduled or
`shopflow run`; a new backfill run is Airflow's `backfill__<D+1>`), logical date D 00:00,
data interval D 00:00 → D+1 00:00 UTC.
The scheduled run for D starts after D+1 00:00, when the day is over, and its first task
waits for D's landing data. `shopflow run --date YYYY-MM-DD` runs it for any date, and a
rerun replaces that date's outputs.
A home whose data does not land every day sets `[airflow] schedule = false` (shopflow.toml):
no scheduled runs then, only the ones asked for (the demo shop does).

| task | does | when it fails |
| --- | --- | --- |
| `wait_for_landing` | waits (deferred, on the triggerer) until D's `order_lines` partition is complete: `landing/order_lines/D/_SUCCESS` exists | no marker after 12 hours: the shop's data for D did not arrive; load it (`shopflow load`) and clear the run |
| `ingest_landing` | validates new/changed landing partitions up to the date, loads them into `raw` | bad landing data: the log names file, column/rule and the Data Docs page. Nothing was loaded. Fix or replace the file, clear the task. |
| `build_warehouse` | one `dbt build` of staging, marts, features (with dbt tests) | dbt could not run: see `$SHOPFLOW_HOME/dbt/logs/dbt.log` |
| `dbt_model` (one per model) | reports that model's build and tests | the failed model or test, in plain words; fix the data or the model, clear the task |
| `validate_marts` | quality gate on the marts: references, continuous daily demand, raw ↔ mart row counts; net units (warning) | the log names the rule and the Data Docs page; see docs/runbooks/quality_gate.md |
| `build_training_features` | when the ranker has no champion yet: adds its training cutoffs (D−28 … D−168) to the per-cutoff features (dbt); otherwise does nothing | a failed dbt test of those models: see `$SHOPFLOW_HOME/dbt/logs/dbt.log` |
| `ensure_models` | trains first models if a model has no champion (reads the warehouse, writes the registry) | — |
| `score_forecast`, `score_recommendations` | score with the champion models | missing champion or corrupted artifact: see `shopflow models list` |
| `validate_predictions` | quality gate on predictions | nothing was published; yesterday's exports are intact |
| `publish_exports` | builds the date's snapshot (`exports.*` and Parquet), checks a newly promoted champion's outputs on it, then makes it visible in one step | yesterday's exports are intact; a rejected champion was rolled back and the date published with the previous one (never shown); see docs/lifecycle.md, runbook "The model was rolled back last night" |
| `record_baselines` | records what the baselines (28-day mean; popular and repurchase lists) would have published for the date, for the same products and customers, in the warehouse's `predictions` schema | infrastructure only (retried); the exports are already published |
| `check_live_accuracy` | compares the champions' live accuracy (dbt models `live_*`, published as `exports.forecast_accuracy` / `exports.recommendation_outcomes`) with the best baseline's on the same run dates; rolls a champion back after `SHOPFLOW_LIVE_EVALUATIONS` evaluations in a row worse by more than `SHOPFLOW_LIVE_MARGIN` | the rollback's republish failed: see docs/lifecycle.md, runbook "The model was rolled back last night" |
| `check_published` | runs last, whatever happened upstream: when a model version changed since the previous published run, checks coverage, row counts, NaN share and shift again on what is published (or, if nothing was published, whether scoring with the new champion failed) | the new champion was rolled back, the exports for the date rebuilt with the previous one; see docs/lifecycle.md, runbook "The model was rolled back last night" |
| `write_report` | runs after everything else: the static HTML report `$SHOPFLOW_HOME/reports/D/index.html` (the run's "Nightly report" tab in the UI) | infrastructure only; `shopflow report --date D` writes it again |
| `any_task_failed` | runs only when a task failed: fails the run (`check_published` is skipped when an upstream failure left nothing to check, and a run whose last task was skipped would count as a success) | look at the first red task before it: its log says what failed and what to do |

Data errors fail at once (not retried); infrastructure errors are retried twice.
Only one run at a time (`max_active_runs=1`) and every task but the sensor runs in the
one-slot `shopflow_warehouse` pool: DuckDB allows one writer per file.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, task

from shopflow.jobs.steps import ANY_WORKER_QUEUE, default_args
from shopflow.sensors import LandingPartitionSensor
from shopflow.timetables import BusinessDayTimetable, scheduled

RECOMMENDATIONS = Asset("shopflow://exports/recommendations")
DEMAND_FORECAST = Asset("shopflow://exports/demand_forecast")

with DAG(
    dag_id="shopflow_nightly",
    # data interval [D 00:00, D+1 00:00) UTC, logical date D: the run for D starts after D ends
    schedule=scheduled(BusinessDayTimetable(run_id_prefix="nightly")),
    start_date=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),  # any business date can be backfilled
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    doc_md=__doc__,
    tags=["shopflow", "nightly"],
) as dag:
    landing_ready = LandingPartitionSensor(
        task_id="wait_for_landing",
        # not the one-slot warehouse pool: the sensor never touches DuckDB, and a night
        # waiting for its data must not keep the slot from retraining or a rollback
        pool="default_pool",
        retries=0,
        doc_md="Wait (deferred) until the date's order_lines landing partition is complete.",
    )

    @task(doc_md="Validate and load new or changed landing partitions up to the date.")
    def ingest_landing(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("ingest_landing", ds)

    @task(doc_md="One `dbt build` (models + tests) as of the date; `dbt_model` reports each model.")
    def build_warehouse(ds: str | None = None) -> list[dict]:
        from shopflow.jobs.steps import run_step

        return run_step("build_warehouse_models", ds)

    @task(
        map_index_template="{{ dbt_model }}",
        retries=0,
        # reads only its XCom report, never SHOPFLOW_HOME: any Celery worker may run it
        queue=ANY_WORKER_QUEUE,
        doc_md="One model of the build and its tests: fails when either failed (see the log).",
    )
    def dbt_model(report: dict) -> dict:
        from airflow.sdk import get_current_context

        from shopflow.jobs.steps import check_dbt_model

        get_current_context()["dbt_model"] = report["model"]
        return check_dbt_model(report)

    @task(doc_md="Quality gate on the marts after dbt build.")
    def validate_marts(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("validate_marts", ds)

    @task(doc_md="Add the ranker's training cutoffs when it has no champion; else nothing.")
    def build_training_features(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("build_training_features", ds)

    @task(doc_md="Train and promote first models when a model has no champion.")
    def ensure_models(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("ensure_models", ds)

    @task(doc_md="Forecast every active product, horizons 1..28, with the champion.")
    def score_forecast(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("score_forecast", ds)

    @task(doc_md="Top-K recommendations for every active customer with the champion.")
    def score_recommendations(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("score_recommendations", ds)

    @task(doc_md="Quality gate on the predictions before publishing.")
    def validate_predictions(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("validate_predictions", ds)

    @task(
        outlets=[RECOMMENDATIONS, DEMAND_FORECAST],
        doc_md="Publish exports.* (DuckDB) and Parquet for the date, all or nothing.",
    )
    def publish_exports(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("publish_exports", ds)

    @task(
        # runs after any upstream outcome: a new champion that breaks scoring is rolled back too
        trigger_rule="all_done",
        doc_md="Check a new champion's published outputs, or its failed scoring; roll back on failure.",
    )
    def check_published(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("check_published", ds)

    @task(doc_md="Record the baselines' forecasts and lists for the date (live accuracy).")
    def record_baselines(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("record_baselines", ds)

    @task(doc_md="Roll back a champion that kept losing to the best baseline on live outcomes.")
    def check_live_accuracy(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("check_live_accuracy", ds)

    @task(
        trigger_rule="all_done",
        doc_md="Write the night's static HTML report ($SHOPFLOW_HOME/reports/<date>/).",
    )
    def write_report(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("write_report", ds)

    @task(
        trigger_rule="one_failed",
        retries=0,
        queue=ANY_WORKER_QUEUE,  # touches nothing: any Celery worker may run it
        on_failure_callback=[],  # the failed task itself has alerted
        doc_md="Fails the run when any task failed; the first red task's log says why.",
    )
    def any_task_failed() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            "a task of this run failed: its log (the first red task) says what failed and what "
            "to do. This task only marks the run as failed."
        )

    built = build_warehouse()
    landing_ready >> ingest_landing() >> built
    models = (
        dbt_model.expand(report=built)
        >> validate_marts()
        >> build_training_features()
        >> ensure_models()
    )
    scores = [score_forecast(), score_recommendations()]
    models >> scores
    published = scores >> validate_predictions() >> publish_exports()
    published >> record_baselines() >> check_live_accuracy() >> check_published() >> write_report()
    # after every task: a run fails when any task failed, whatever the last task did
    watcher = any_task_failed()
    for upstream in [t for t in dag.tasks if t is not watcher.operator]:
        upstream >> watcher
