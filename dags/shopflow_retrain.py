"""
### shopflow_retrain

Champion/challenger retraining of both models (**demand_forecast**, **recommendations**).
Runs weekly (Sunday 05:00 UTC, after the nightly run for Saturday) and on demand:
`shopflow retrain --date YYYY-MM-DD`. The training cutoff is the latest business date the
warehouse is built for, at most the run's date (normally the nightly run's last date).

| task | does | when it fails |
| --- | --- | --- |
| `build_training_sets` | fixes the cutoff, checks that its data passed the quality gate (nightly run published, landing unchanged), records the training set's fingerprint | the warehouse is built for a later date, or not at all: the log says which `shopflow` command to run |
| `build_training_features` | adds the ranker's training cutoffs (cutoff − 28, 56 … 168 days) to the per-cutoff feature models (`dbt build --select feat_customer_product feat_product_popularity feat_product_cooccurrence`, incremental: the cutoff's own rows stay as the nightly run built them) | infrastructure errors are retried; a failed dbt test of those models fails at once |
| `train_challengers` | trains one challenger per model on everything up to the cutoff (reads the warehouse), registers it (artifact SHA-256, params, feature schema, data fingerprint, code version) | infrastructure errors are retried |
| `evaluate_challengers` | refits challenger and champion recipes on the same time folds (forecasts: 2 origins; recommendations: the feature cutoffs), scores the baselines on the same rows; stored in `registry.duckdb` table `evaluations` | — |
| `promote_or_keep` | promotes a challenger only if its data passed the gate, it beats every baseline and the champion by the margin (NDCG@10; weekly WAPE) without regressing on secondary metrics; otherwise it stays a challenger with the reason (`shopflow models list`) | — |

A challenger that is kept is not a failure: the task succeeds and the reason is on record.
The nightly run checks a newly promoted champion after publishing and rolls it back on its
own (see docs/lifecycle.md). Only one run at a time; every task uses the `shopflow_warehouse` pool.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from shopflow.jobs.steps import default_args
from shopflow.timetables import UpcomingCronTriggerTimetable, scheduled

with DAG(
    dag_id="shopflow_retrain",
    # the run's date is the trigger day; the cutoff is the latest built date on or before it.
    # Switched on, the first run is the upcoming Sunday's, never a past one; run ids
    # retrain__<date>, as `shopflow retrain --date D` names its run
    schedule=scheduled(UpcomingCronTriggerTimetable("0 5 * * 0", run_id_prefix="retrain")),
    start_date=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),  # any date can be retrained for
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    doc_md=__doc__,
    tags=["shopflow", "retrain"],
) as dag:

    @task(doc_md="Fix the training cutoff and check its data passed the quality gate.")
    def build_training_sets(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("build_training_sets", ds)

    @task(doc_md="Add the ranker's training cutoffs as of the retrain's cutoff (dbt).")
    def build_training_features(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("build_retrain_features", ds)

    @task(doc_md="Train and register one challenger per model.")
    def train_challengers(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("train_challengers", ds)

    @task(doc_md="Challenger, champion and baselines on the same time folds.")
    def evaluate_challengers(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("evaluate_challengers", ds)

    @task(doc_md="Promote challengers that pass the policy; record why the others stay.")
    def promote_or_keep(ds: str | None = None) -> dict:
        from shopflow.jobs.steps import run_step

        return run_step("promote_or_keep", ds)

    (
        build_training_sets()
        >> build_training_features()
        >> train_challengers()
        >> evaluate_challengers()
        >> promote_or_keep()
    )
