"""The DAG files as Airflow parses them, and what the DAGs guarantee about their order.

Everything comes from one Airflow probe per session (``probe``, see airflow_probe.py). The
dependency tests state what the pipeline must guarantee as reachability between tasks, so a
task added in between (another feature build, another check) keeps them true, and a missing
or misplaced edge makes them fail.
"""

from __future__ import annotations

import datetime as dt

import pytest

# the pool the Airflow runner creates with one slot (`pools set <pool> 1`)
from shopflow.warehouse import WAREHOUSE_POOL
from tests.dags.airflow_probe import DAGS_DIR

DAG_FILES = sorted(path.name for path in DAGS_DIR.glob("*.py"))


# -- the DAG graph as sets of task ids -------------------------------------------------------
def _dag(probe: dict, dag_id: str) -> dict:
    if dag_id not in probe["dags"]:
        pytest.fail(f"Airflow found no DAG {dag_id}; import errors: {probe['import_errors']}")
    return probe["dags"][dag_id]


def _tasks(probe: dict, dag_id: str) -> dict[str, dict]:
    return _dag(probe, dag_id)["tasks"]


def _reachable(tasks: dict[str, dict], start: str, direction: str) -> set[str]:
    """Task ids reachable from ``start`` along ``direction`` edges ("upstream"/"downstream")."""
    seen: set[str] = set()
    stack = list(tasks[start][direction])
    while stack:
        task_id = stack.pop()
        if task_id not in seen:
            seen.add(task_id)
            stack.extend(tasks[task_id][direction])
    return seen


def ancestors(tasks: dict[str, dict], task_id: str) -> set[str]:
    """Every task that must finish before ``task_id`` can start."""
    return _reachable(tasks, task_id, "upstream")


def descendants(tasks: dict[str, dict], task_id: str) -> set[str]:
    """Every task that waits, directly or not, for ``task_id``."""
    return _reachable(tasks, task_id, "downstream")


def between(tasks: dict[str, dict], first: str, last: str) -> set[str]:
    """The tasks on some path from ``first`` to ``last``, both included."""
    return ({first} | descendants(tasks, first)) & ({last} | ancestors(tasks, last))


def test_graph_helpers_follow_edges_transitively():
    # a -> b -> d, a -> c -> d, e alone: checked here so that the DAG tests below can rely on them
    tasks = {
        "a": {"upstream": [], "downstream": ["b", "c"]},
        "b": {"upstream": ["a"], "downstream": ["d"]},
        "c": {"upstream": ["a"], "downstream": ["d"]},
        "d": {"upstream": ["b", "c"], "downstream": []},
        "e": {"upstream": [], "downstream": []},
    }
    assert descendants(tasks, "a") == {"b", "c", "d"}
    assert ancestors(tasks, "d") == {"a", "b", "c"}
    assert ancestors(tasks, "a") == descendants(tasks, "e") == set()
    assert between(tasks, "b", "d") == {"b", "d"}
    assert between(tasks, "b", "c") == set()


# -- every DAG file --------------------------------------------------------------------------
def test_every_dag_file_parses_and_serializes_without_errors(probe):
    assert probe["import_errors"] == {}
    assert sorted(probe["files"]) == DAG_FILES


@pytest.mark.parametrize("name", DAG_FILES)
def test_a_dag_file_defines_one_dag_named_after_the_file(probe, name):
    assert probe["files"][name]["dag_ids"] == [name.removesuffix(".py")]


@pytest.mark.parametrize("name", DAG_FILES)
def test_a_dag_file_imports_no_heavy_library_at_parse_time(probe, name):
    # the probe can only see a library Airflow had not already imported itself
    assert probe["heavy_before_parse"] == []
    assert probe["files"][name]["heavy_imported"] == []


@pytest.mark.parametrize("name", DAG_FILES)
def test_a_dag_file_has_no_value_that_changes_at_every_parse(probe, name):
    # Airflow stores a new DAG version whenever the serialized DAG changes (e.g. now() in args)
    assert probe["files"][name]["runtime_varying_values"] == ""


def test_every_dag_is_documented(probe):
    assert probe["dags"]
    assert {dag_id: dag["doc_md"] for dag_id, dag in probe["dags"].items()} == dict.fromkeys(
        probe["dags"], True
    )


def test_one_writer_per_duckdb_file_one_run_and_one_warehouse_slot_at_a_time(probe):
    # README "One writer per DuckDB file": max_active_runs=1 and the one-slot pool, every task
    # but a sensor (it only waits for files, and must not hold the slot while it waits)
    for dag_id, dag in probe["dags"].items():
        assert dag["max_active_runs"] == 1, dag_id
        elsewhere = {
            task_id: (task["pool"], task["pool_slots"])
            for task_id, task in dag["tasks"].items()
            if (task["pool"], task["pool_slots"]) != (WAREHOUSE_POOL, 1) and not task["sensor"]
        }
        assert elsewhere == {}, dag_id


def test_infrastructure_errors_are_retried(probe):
    # data errors fail at once (AirflowFailException); a lock timeout or a killed process is
    # retried. Only a mapped report task, which reads an XCom and touches nothing, a sensor,
    # whose wait is bounded by its own timeout, and a failure watcher may not.
    for dag_id, dag in probe["dags"].items():
        never_retried = [
            task_id
            for task_id, task in dag["tasks"].items()
            if task["retries"] < 1
            and not task["mapped"]
            and not task["sensor"]
            and task["trigger_rule"] != "one_failed"  # a watcher: it only fails the run
        ]
        assert never_retried == [], dag_id


# -- shopflow_nightly ------------------------------------------------------------------------
INGEST, BUILD = "ingest_landing", "build_warehouse"
MARTS_GATE, PREDICTIONS_GATE = "validate_marts", "validate_predictions"
ENSURE_MODELS, PUBLISH, CHECK = "ensure_models", "publish_exports", "check_published"
LIVE_CHECK, REPORT = "check_live_accuracy", "write_report"
SCORES = ("score_forecast", "score_recommendations")


@pytest.fixture(scope="module")
def nightly(probe) -> dict[str, dict]:
    return _tasks(probe, "shopflow_nightly")


def _sensors(dag: dict) -> set[str]:
    return {task_id for task_id, task in dag.items() if task["sensor"]}


def test_nightly_waits_for_its_data_then_ingests_before_anything_else(nightly):
    waits = _sensors(nightly)
    assert waits, "the nightly waits for the date's landing data"
    assert ancestors(nightly, INGEST) == waits
    assert descendants(nightly, INGEST) == set(nightly) - {INGEST} - waits


def test_nightly_reads_the_warehouse_only_after_the_build(nightly):
    # every task but the wait and ingest (which loads raw) reads what dbt builds
    assert descendants(nightly, BUILD) == set(nightly) - {INGEST, BUILD} - _sensors(nightly)


def test_nightly_a_failed_dbt_model_or_test_stops_the_marts_gate(nightly):
    reports = {task_id for task_id, task in nightly.items() if task["mapped"]}
    assert reports, "the per-model dbt report task is mapped"
    assert reports <= descendants(nightly, BUILD) & ancestors(nightly, MARTS_GATE)


def test_nightly_nothing_runs_beside_the_marts_gate(nightly):
    # each task runs before the marts are validated or after: no model trains, scores or
    # publishes on marts that have not passed the gate
    before, after = ancestors(nightly, MARTS_GATE), descendants(nightly, MARTS_GATE)
    assert before | after | {MARTS_GATE} == set(nightly)
    assert {ENSURE_MODELS, *SCORES, PREDICTIONS_GATE, PUBLISH} <= after


def test_nightly_scores_with_a_champion(nightly):
    # ensure_models trains the first champions: scoring without one fails
    for score in SCORES:
        assert ENSURE_MODELS in ancestors(nightly, score), score


def test_nightly_the_predictions_gate_waits_for_both_score_tasks(nightly):
    scores = {task_id for task_id in nightly if task_id.startswith("score_")}
    assert scores == set(SCORES)
    assert scores <= ancestors(nightly, PREDICTIONS_GATE)


def test_nightly_nothing_publishes_before_the_quality_gates_pass(nightly):
    publishers = {PUBLISH} | {task_id for task_id, task in nightly.items() if task["outlets"]}
    gates = {task_id for task_id in nightly if task_id.startswith("validate_")}
    assert gates >= {MARTS_GATE, PREDICTIONS_GATE}
    assert nightly[PUBLISH]["outlets"], "publish_exports announces the exports it updates"
    for publisher in publishers:
        assert gates <= ancestors(nightly, publisher), publisher
        # a failed gate must stop every task from it to the publish, none may run anyway
        for gate in gates:
            on_the_way = between(nightly, gate, publisher)
            rules = {task_id: nightly[task_id]["trigger_rule"] for task_id in on_the_way}
            assert rules == dict.fromkeys(on_the_way, "all_success"), (gate, publisher)


def _watchers(dag: dict) -> set[str]:
    """Tasks that run only when another failed (they fail the run and touch nothing)."""
    return {task_id for task_id, task in dag.items() if task["trigger_rule"] == "one_failed"}


def test_nightly_checks_the_published_outputs_last_whatever_happened(nightly):
    # only the report, which publishes nothing, follows (it shows what the checks did)
    watchers = _watchers(nightly)
    assert ancestors(nightly, CHECK) == set(nightly) - {CHECK, REPORT} - watchers
    assert set(nightly[CHECK]["downstream"]) <= watchers | {REPORT}
    assert ancestors(nightly, REPORT) == set(nightly) - {REPORT} - watchers
    assert nightly[REPORT]["trigger_rule"] == "all_done"
    # a rollback on live outcomes republishes: only after the night's own publish succeeded
    assert PUBLISH in ancestors(nightly, LIVE_CHECK)
    assert nightly[LIVE_CHECK]["trigger_rule"] == "all_success"
    # runs after failures too: a new champion that breaks scoring is rolled back as well
    assert nightly[CHECK]["trigger_rule"] == "all_done"


def test_a_failed_nightly_task_fails_the_run_even_when_the_last_task_is_skipped(nightly):
    # check_published is skipped when an upstream failure left nothing to check, and a run
    # whose leaves succeeded or were skipped would count as a success
    watchers = _watchers(nightly)
    assert len(watchers) == 1
    (watcher,) = watchers
    assert ancestors(nightly, watcher) == set(nightly) - {watcher}
    assert nightly[watcher]["downstream"] == []


# -- shopflow_retrain ------------------------------------------------------------------------
TRAINING_SETS, TRAIN = "build_training_sets", "train_challengers"
EVALUATE, DECIDE = "evaluate_challengers", "promote_or_keep"


@pytest.fixture(scope="module")
def retrain(probe) -> dict[str, dict]:
    return _tasks(probe, "shopflow_retrain")


def test_retrain_checks_the_training_data_before_anything_else(retrain):
    assert retrain[TRAINING_SETS]["upstream"] == []
    assert descendants(retrain, TRAINING_SETS) == set(retrain) - {TRAINING_SETS}


def test_retrain_decides_only_on_trained_and_evaluated_challengers(retrain):
    assert TRAIN in ancestors(retrain, EVALUATE)
    assert {TRAINING_SETS, TRAIN, EVALUATE} <= ancestors(retrain, DECIDE)
    # a failure anywhere before the decision stops it: nothing is promoted on a partial run
    on_the_way = between(retrain, TRAINING_SETS, DECIDE)
    rules = {task_id: retrain[task_id]["trigger_rule"] for task_id in on_the_way}
    assert rules == dict.fromkeys(on_the_way, "all_success")


# -- schedules -------------------------------------------------------------------------------
def _runs(probe: dict, dag_id: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """(run_after, logical date) of the DAG's next scheduled runs, as the scheduler sees them."""
    runs = _dag(probe, dag_id)["schedule"]["runs"]
    return [
        (dt.datetime.fromisoformat(r["run_after"]), dt.datetime.fromisoformat(r["logical_date"]))
        for r in runs
    ]


def test_each_scheduled_nightly_run_processes_the_business_day_that_just_ended(probe):
    runs = _runs(probe, "shopflow_nightly")
    assert len(runs) > 2
    for run_after, logical in runs:
        business_date = logical.astimezone(dt.UTC).date()  # the tasks' ds
        assert run_after.astimezone(dt.UTC) >= dt.datetime.combine(
            business_date + dt.timedelta(days=1), dt.time(), dt.UTC
        ), "a run starts only once its business day has ended"
    dates = [logical.date() for _, logical in runs]
    assert dates == [dates[0] + dt.timedelta(days=i) for i in range(len(dates))]


def test_retrain_runs_weekly_after_the_nightly_run_for_saturday(probe):
    nightly_start = {logical.date(): after for after, logical in _runs(probe, "shopflow_nightly")}
    runs = _runs(probe, "shopflow_retrain")
    assert len(runs) > 1
    assert {b[0] - a[0] for a, b in zip(runs, runs[1:], strict=False)} == {dt.timedelta(days=7)}
    for run_after, _ in runs:
        assert run_after.weekday() == 6, run_after  # Sunday
        saturday = run_after.date() - dt.timedelta(days=1)
        if saturday in nightly_start:
            assert nightly_start[saturday] < run_after
    assert any(r.date() - dt.timedelta(days=1) in nightly_start for r, _ in runs)
