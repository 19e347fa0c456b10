"""One look at the DAG folder through Airflow, shared by every test that needs Airflow.

Importing Airflow takes seconds, so the tests ask it once per session: :func:`airflow_probe`
runs this file in a fresh interpreter (the test process has long since imported pandas and
friends, which would hide a DAG file importing them) and returns what it saw as JSON.

The interpreter parses each DAG file the way Airflow's DAG processor does: a ``DagBag`` of the
one file, then the serialization the processor stores (a failure there is an import error in
the UI too), with the environment ``shopflow run`` gives Airflow. It reports

- ``import_errors``: file -> message, from parsing or serialization;
- ``files``: per DAG file its dag ids, parse seconds, the heavy modules that parsing it
  imported, and the DAG-version-inflation warnings Airflow raises for values that change at
  every parse;
- ``dags``: per DAG its file, doc_md presence, max_active_runs, schedule (timetable class,
  summary and its next scheduled runs from a fixed Monday) and per task its upstream and
  downstream task ids, pool, pool slots, retries, trigger rule, whether it is mapped, and the
  asset URIs it updates;
- ``heavy_before_parse``: heavy modules Airflow itself had imported before any DAG file;
- ``airflow_version``: the installed Airflow's version;
- ``config_options``: section -> option names of the installed Airflow's configuration.

Only the standard library is imported at module level: the subprocess half must start light.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"
# libraries that take seconds to import: Airflow parses DAG files often, so none at parse time
HEAVY_MODULES = (
    "pandas",
    "numpy",
    "xgboost",
    "dbt",
    "great_expectations",
    "duckdb",
    "sklearn",
    "pyarrow",
)
# the schedule is reported as the scheduled runs after this instant (a Monday, 00:00 UTC)
SCHEDULE_FROM = "2026-01-05T00:00:00+00:00"
SCHEDULED_RUNS = 8


@functools.cache
def airflow_probe() -> dict:
    """What Airflow sees in dags/ (see the module docstring); one subprocess per session."""
    from shopflow.deploy.env import airflow_env
    from shopflow.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="shopflow-dag-probe-") as home:
        settings = load_settings({"SHOPFLOW_HOME": home})
        done = subprocess.run(
            [sys.executable, __file__, str(DAGS_DIR)],
            env={**airflow_env(settings), "SHOPFLOW_SCHEDULE": "on"},  # the schedules as shipped
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the Airflow probe failed:\n{done.stderr[-4000:]}")
    # Airflow may log to stdout; the report is the last line
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the subprocess half ---------------------------------------------------------------------
def _heavy_loaded() -> set[str]:
    return {name.split(".")[0] for name in sys.modules} & set(HEAVY_MODULES)


def _schedule(dag) -> dict:
    """The timetable as the scheduler uses it: the serialized DAG's, not the SDK's."""
    import pendulum
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import TimeRestriction

    timetable = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
    runs, last = [], None
    restriction = TimeRestriction(earliest=pendulum.parse(SCHEDULE_FROM), latest=None, catchup=True)
    for _ in range(SCHEDULED_RUNS):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        if info is None:
            break
        runs.append(
            {
                "run_after": info.run_after.isoformat(),
                "logical_date": info.logical_date.isoformat() if info.logical_date else None,
            }
        )
        last = info.data_interval
    return {
        "timetable": type(timetable).__name__,
        "summary": timetable.summary,
        "runs": runs,
    }


def _task(task) -> dict:
    return {
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "pool": task.pool,
        "queue": task.queue,
        "pool_slots": task.pool_slots,
        "retries": task.retries,
        "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
        "mapped": type(task).__name__.endswith("MappedOperator"),
        # a sensor waits (deferred, on the triggerer) and touches no DuckDB file
        "sensor": any(cls.__name__ == "BaseSensorOperator" for cls in type(task).__mro__),
        "outlets": sorted(getattr(outlet, "uri", str(outlet)) for outlet in task.outlets),
    }


def _probe(dags_dir: Path) -> dict:
    import airflow
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.dag_version_inflation_checker import check_dag_file_stability

    heavy_before = _heavy_loaded()
    report: dict = {
        "airflow_version": airflow.__version__,
        "heavy_before_parse": sorted(heavy_before),
        "import_errors": {},
        "files": {},
        "dags": {},
    }
    seen = set(heavy_before)
    for path in sorted(dags_dir.glob("*.py")):
        started = time.perf_counter()
        # as the DAG processor does: one file per DagBag, then serialize what it found
        bag = DagBag(dag_folder=str(path), safe_mode=False)
        errors = dict(bag.import_errors)
        for dag in bag.dags.values():
            try:
                DagSerialization.to_dict(dag)
            except Exception as exc:  # reported, asserted by the tests
                errors[str(path)] = f"serialization failed: {type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        imported = _heavy_loaded() - seen
        seen |= imported
        stability = check_dag_file_stability(str(path))
        report["import_errors"].update({Path(k).name: v for k, v in errors.items()})
        report["files"][path.name] = {
            "dag_ids": sorted(bag.dags),
            "parse_seconds": round(seconds, 3),
            "heavy_imported": sorted(imported),
            "runtime_varying_values": stability.format_warnings() if stability.warnings else "",
        }
        for dag_id, dag in bag.dags.items():
            report["dags"][dag_id] = {
                "file": Path(dag.fileloc).name,
                "doc_md": bool((dag.doc_md or "").strip()),
                "max_active_runs": dag.max_active_runs,
                "schedule": _schedule(dag),
                "tasks": {task.task_id: _task(task) for task in dag.tasks},
            }
    report["config_options"] = {
        section: sorted(spec.get("options", {}))
        for section, spec in conf.configuration_description.items()
    }
    return report


if __name__ == "__main__":
    print(json.dumps(_probe(Path(sys.argv[1]))))
