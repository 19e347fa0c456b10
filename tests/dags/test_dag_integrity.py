"""DAG files import cleanly, fast, and without heavy libraries at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pandas", "xgboost", "dbt", "great_expectations", "sklearn", "duckdb", "numpy")

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from airflow.sdk import DAG
dags = [v for v in vars(module).values() if isinstance(v, DAG)]
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[2].split(',')))
print(json.dumps({
    "heavy": heavy,
    "dags": [
        {"dag_id": d.dag_id, "doc_md": bool(d.doc_md), "max_active_runs": d.max_active_runs,
         "tasks": sorted(d.task_ids),
         "pools": sorted({t.pool for t in d.tasks if t.task_id != "wait_for_landing"}),
         "sensor_pool": [t.pool for t in d.tasks if t.task_id == "wait_for_landing"],
         "watcher": {
             "trigger_rule": str(t.trigger_rule), "upstream": sorted(t.upstream_task_ids),
             "retries": t.retries,
         } if (t := d.task_dict.get("any_task_failed")) else None}
        for d in dags
    ],
}))
"""


def _probe(path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_defines_one_documented_dag_named_after_the_file(path):
    result = _probe(path)
    assert [d["dag_id"] for d in result["dags"]] == [path.stem]
    dag = result["dags"][0]
    assert dag["doc_md"] is True
    assert dag["max_active_runs"] == 1
    assert dag["pools"] == ["shopflow_warehouse"]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_library(path):
    assert _probe(path)["heavy"] == []


def test_nightly_dag_has_the_documented_tasks():
    result = _probe(DAGS_DIR / "shopflow_nightly.py")
    assert result["dags"][0]["tasks"] == [
        "any_task_failed",
        "build_warehouse",
        "check_published",
        "dbt_model",
        "ensure_models",
        "ingest_landing",
        "publish_exports",
        "score_forecast",
        "score_recommendations",
        "validate_marts",
        "validate_predictions",
        "wait_for_landing",
    ]
    # the landing sensor waits outside the one-slot warehouse pool: it never touches DuckDB
    assert result["dags"][0]["sensor_pool"] == ["default_pool"]
    # check_published is skipped when an upstream failure left nothing to check; a run whose
    # last task is skipped counts as a success, so this task fails the run instead
    watcher = result["dags"][0]["watcher"]
    assert watcher["trigger_rule"] in ("one_failed", "TriggerRule.ONE_FAILED")
    assert watcher["upstream"] == sorted(set(result["dags"][0]["tasks"]) - {"any_task_failed"})
    assert watcher["retries"] == 0


def test_retrain_dag_has_the_documented_tasks():
    result = _probe(DAGS_DIR / "shopflow_retrain.py")
    assert result["dags"][0]["tasks"] == [
        "build_training_sets",
        "evaluate_challengers",
        "promote_or_keep",
        "train_challengers",
    ]
