"""Run Shopflow's DAGs through a local, embedded Airflow (SQLite metadata under SHOPFLOW_HOME).

`airflow dags test` executes a whole DAG run in one process, in dependency order, with the
real task runner (retries, XCom, logs) and no scheduler or webserver to manage: the right
tool for `make run`, backfills from the command line and the end-to-end tests. A deployment
with a scheduler (docker-compose.yml) runs the same DAG files unchanged.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.orchestration import WAREHOUSE_POOL

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings


class DagRunFailedError(RuntimeError):
    """An Airflow DAG run ended in a failed state."""


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for the embedded Airflow: home, DAG folder, SQLite, no examples."""
    home = settings.airflow_home
    return {
        **os.environ,
        "SHOPFLOW_HOME": str(settings.home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(settings.project_root), os.environ.get("PYTHONPATH", "")) if p
        ),
        "GX_ANALYTICS_ENABLED": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def airflow_executable() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow(settings: Settings, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """Run an ``airflow`` CLI command against the embedded installation."""
    return subprocess.run(
        [airflow_executable(), *args],
        env=airflow_env(settings),
        capture_output=capture,
        text=True,
        check=False,
    )


def ensure_airflow(settings: Settings) -> None:
    """Create or upgrade the metadata database and the warehouse pool (idempotent)."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    for args in (
        ("db", "migrate"),
        ("pools", "set", WAREHOUSE_POOL, "1", "Shopflow: one writer per DuckDB file"),
    ):
        done = airflow(settings, *args, capture=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )


def run_dag(
    settings: Settings, dag_id: str, run_date: dt.date, *, log_file: Path | None = None
) -> None:
    """Run ``dag_id`` for business date ``run_date`` with `airflow dags test`.

    Output goes to ``log_file`` (default ``$SHOPFLOW_HOME/airflow/runs/<dag>_<date>.log``);
    raises :class:`DagRunFailedError` with the failing task's message when the run fails.
    """
    ensure_airflow(settings)
    log_file = log_file or settings.airflow_home / "runs" / f"{dag_id}_{run_date.isoformat()}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as handle:
        process = subprocess.run(
            [airflow_executable(), "dags", "test", dag_id, run_date.isoformat()],
            env=airflow_env(settings),
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    if process.returncode != 0:
        raise DagRunFailedError(
            f"{dag_id} for {run_date} failed. {failure_summary(log_file)}\nFull log: {log_file}"
        )
    if "[DAG TEST] starting" not in log_file.read_text(errors="replace"):
        # Airflow creates an empty, "successful" run for a date before the DAG's start_date
        raise DagRunFailedError(
            f"{dag_id} for {run_date} ran no task (is the date before the DAG's start_date?). "
            f"Full log: {log_file}"
        )


def failure_summary(log_file: Path) -> str:
    """The failing tasks' error lines from a `dags test` log, for a human."""
    lines = log_file.read_text(errors="replace").splitlines()
    messages = []
    for line in lines:
        if "AirflowFailException:" in line or line.startswith(
            ("shopflow.", "RuntimeError:", "ValueError:", "KeyError:")
        ):
            text = line.split("AirflowFailException:", 1)[-1].strip()
            if text not in messages:
                messages.append(text)
    failed = sorted(
        {
            line.split("task_id=")[1].split()[0]
            for line in lines
            if "new_state=failed" in line and "task_id=" in line
        }
    )
    head = f"Failed tasks: {', '.join(failed)}. " if failed else ""
    return head + ("\n".join(messages[-5:]) if messages else "See the log for the traceback.")
