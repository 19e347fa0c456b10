"""The CeleryExecutor deployment end to end (``make test-celery``; CI runs it).

``shopflow up --executor celery`` on a fresh SHOPFLOW_HOME with the tiny demo shop: Postgres,
Redis, the Airflow services and two Celery workers. The nightly for the shop's last date,
then the retrain DAG, through the scheduler; then ``shopflow down``. During the nightly's dbt
build the worker running it is killed (SIGKILL, its whole process tree: a crashed worker), then
started again as an operator would. Checks: both runs succeed, the killed task was failed by
the scheduler and retried, ``shopflow run`` said which worker stopped, task instances ran on
both workers, no two warehouse-pool task tries overlapped in time (one DuckDB writer, the
killed try included), the published rows equal those of the same night run in process on a
copy of the same landing data and champions, and nothing is left running (pids gone, ports
free).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from shopflow.deploy.api import AirflowApi, ApiError
from shopflow.deploy.runs import run_id_for
from shopflow.deploy.services import PORT_BLOCK, free_port_block, port_in_use, status
from shopflow.settings import Settings, load_settings
from shopflow.warehouse import WAREHOUSE_POOL
from tests.integration.conftest import read_exports

pytestmark = pytest.mark.celery

SHOPFLOW = Path(sys.executable).with_name("shopflow")
# the task whose worker is killed mid-task: the warehouse's one writer, dbt running
KILLED_TASK = "build_warehouse"
# how long a task may go without a heartbeat before the scheduler fails it (Airflow's default
# is 300 s; shorter here so that the test does not wait five minutes)
HEARTBEAT_TIMEOUT_S = 60


# the same night in process (NIGHTLY_STEPS, as the benchmark's in-process run) on a copy of
# the landing data and models: what the deployment must publish too
EMBEDDED_NIGHT = """
import datetime as dt, sys
from shopflow.jobs.steps import NIGHTLY_STEPS
from shopflow.settings import load_settings
settings = load_settings()
settings.ensure_dirs()
for step in NIGHTLY_STEPS.values():
    step(settings, dt.date.fromisoformat(sys.argv[1]))
"""


def _shopflow(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SHOPFLOW), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _family(settings: Settings) -> list[psutil.Process]:
    processes = []
    for state in status(settings):
        if state.alive:
            parent = psutil.Process(state.pid)
            processes += [parent, *parent.children(recursive=True)]
    return processes


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _task_instances(api: AirflowApi, dag_id: str) -> list[dict]:
    runs = api.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]
    tis = []
    for run in runs:
        tis += api.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances", limit=1000)[
            "task_instances"
        ]
    return tis


def _tries(api: AirflowApi, tis: list[dict]) -> list[dict]:
    """Every try of every task instance: a retried one's earlier tries too."""
    tries = []
    for ti in tis:
        if (ti.get("try_number") or 0) <= 1:
            tries.append(ti)
            continue
        index = "" if ti.get("map_index", -1) == -1 else f"/{ti['map_index']}"
        tries += api.get(
            f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}"
            f"{index}/tries"
        )["task_instances"]
    return tries


def _ask_flower(settings: Settings) -> dict:
    """Flower's answer about the workers, with the admin's login and without it."""
    import base64
    import json
    import urllib.error
    import urllib.request

    from shopflow.deploy.env import ADMIN_USER, admin_password

    url = f"http://127.0.0.1:{settings.flower_port}/api/workers?refresh=1"
    try:
        urllib.request.urlopen(url, timeout=30)
        anonymous = 200
    except urllib.error.HTTPError as exc:
        anonymous = exc.code
    login = base64.b64encode(f"{ADMIN_USER}:{admin_password(settings)}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {login}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        workers = json.loads(answer.read())
    return {"anonymous": anonymous, "workers": sorted(name.split("@")[0] for name in workers)}


@pytest.fixture(scope="module")
def celery_run():
    """Up, nightly + retrain through Celery, facts gathered, down; yields what was seen."""
    from shopflow.generator import generate_shop
    from tests.conftest import TINY_SPEC

    # Postgres runs as the `postgres` user: it must be able to reach SHOPFLOW_HOME, which
    # pytest's private tmp folders (mode 0700 under /tmp/pytest-of-root) would forbid
    root = Path(tempfile.mkdtemp(prefix="shopflow-celery-"))
    root.chmod(0o755)
    home = root / "home"
    env = {
        **os.environ,
        "SHOPFLOW_HOME": str(home),
        "SHOPFLOW_AIRFLOW_PORT": str(free_port_block(PORT_BLOCK["celery"])),
        "SHOPFLOW_RUN_TIMEOUT_MINUTES": "15",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "SHOPFLOW_RETRY_DELAY_SECONDS": "10",  # the killed task's retry: no two-minute wait
    }
    settings = load_settings(env)
    shop = generate_shop(TINY_SPEC, settings.landing_dir)
    day = shop.last_date.isoformat()
    # the same landing data for the in-process night, before any run touches the home
    embedded_home = root / "embedded"
    shutil.copytree(
        settings.landing_dir, load_settings({"SHOPFLOW_HOME": str(embedded_home)}).landing_dir
    )

    seen: dict = {"settings": settings, "day": shop.last_date, "timings": {}}
    started = time.monotonic()
    up = _shopflow(env, "up", "--executor", "celery", timeout=600)
    seen["timings"]["up"] = time.monotonic() - started
    embedded: list[subprocess.Popen] = []
    try:
        yield from _runs(seen, env, settings, up, day, embedded, embedded_home)
    finally:
        for process in embedded:
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _start_embedded_night(settings: Settings, embedded_home: Path, day: str) -> subprocess.Popen:
    """The same night in process on a copy of the landing data and of the model registry the
    deployment's night left (the same champions: what is compared is ingest, dbt, scoring
    and publishing, not whether two trainings agree)."""
    shutil.copytree(settings.models_dir, embedded_home / "models")
    return subprocess.Popen(
        [sys.executable, "-c", EMBEDDED_NIGHT, day],
        env={**os.environ, "SHOPFLOW_HOME": str(embedded_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_worker_mid_task(seen: dict, env: dict, settings: Settings, run_id: str) -> None:
    """Once KILLED_TASK runs, SIGKILL its worker's process tree; once the scheduler has failed
    that try (no heartbeat), start the worker again (`shopflow up --executor celery`)."""
    api = AirflowApi(settings)
    path = f"/dags/shopflow_nightly/dagRuns/{run_id}/taskInstances/{KILLED_TASK}"
    deadline = time.monotonic() + 900
    ti: dict = {}
    while time.monotonic() < deadline:
        try:
            ti = api.get(path)
        except ApiError:
            ti = {}  # the run or the task instance does not exist yet
        if ti.get("state") == "running" and ti.get("hostname"):
            break
        time.sleep(0.5)
    assert ti.get("state") == "running", f"{KILLED_TASK} never ran: {ti}"
    time.sleep(3)  # mid-task: dbt is building the warehouse
    worker = ti["hostname"].split("@")[0]
    (state,) = [s for s in status(settings) if s.name == worker]
    parent = psutil.Process(state.pid)
    tree = [parent, *parent.children(recursive=True)]
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(tree, timeout=30)
    seen["killed"] = {"worker": worker, "try_number": ti["try_number"], "processes": len(tree)}
    while time.monotonic() < deadline and api.get(path)["try_number"] == ti["try_number"]:
        time.sleep(1)  # the scheduler fails the silent try and schedules the next one
    seen["restarted"] = _shopflow(env, "up", "--executor", "celery", timeout=600)


def _runs(seen, env, settings, up, day, embedded, embedded_home):
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        settings = load_settings({**env, "SHOPFLOW_AIRFLOW_EXECUTOR": "celery"})
        seen["status"] = [(s.name, s.alive) for s in status(settings)]
        for dag_id, command in (
            ("shopflow_nightly", ["run", "--date", day]),
            ("shopflow_retrain", ["retrain", "--date", day]),
        ):
            started = time.monotonic()
            if dag_id == "shopflow_nightly":
                with tempfile.TemporaryFile("w+") as out:
                    process = subprocess.Popen(
                        [str(SHOPFLOW), *command], env=env, stdout=out, stderr=out, text=True
                    )
                    try:
                        _kill_worker_mid_task(seen, env, settings, run_id_for(dag_id, seen["day"]))
                        process.wait(timeout=1200)
                    finally:
                        if process.poll() is None:
                            process.kill()
                    out.seek(0)
                    done = subprocess.CompletedProcess(
                        process.args, process.returncode, out.read(), ""
                    )
            else:
                done = _shopflow(env, *command, timeout=1200)
            seen["timings"][dag_id] = time.monotonic() - started
            seen[dag_id] = done
            assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
            if dag_id == "shopflow_nightly":
                seen["exports"] = read_exports(settings)
                # it runs while the retrain does: the deployment mostly waits
                embedded.append(_start_embedded_night(settings, embedded_home, day))
                embedded_started = time.monotonic()
        api = AirflowApi(settings)
        seen["task_instances"] = _task_instances(api, "shopflow_nightly") + _task_instances(
            api, "shopflow_retrain"
        )
        seen["tries"] = _tries(api, seen["task_instances"])
        seen["flower"] = _ask_flower(settings)
    finally:
        processes = _family(settings)
        started = time.monotonic()
        stopped = _shopflow(env, "down", timeout=300)
        seen["timings"]["down"] = time.monotonic() - started
        seen["down"] = stopped
        time.sleep(0.5)
        seen["left"] = [
            p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]
        seen["ports_in_use"] = [
            port
            for port in range(settings.airflow_port, settings.airflow_port + PORT_BLOCK["celery"])
            if port_in_use(port)
        ]
        seen["alive_after_down"] = [s.name for s in status(settings) if s.alive]

    out, _ = embedded[0].communicate(timeout=1200)
    seen["timings"]["embedded nightly (concurrent)"] = time.monotonic() - embedded_started
    assert embedded[0].returncode == 0, out[-4000:]
    embedded = load_settings({"SHOPFLOW_HOME": str(embedded_home)})
    seen["embedded_exports"] = read_exports(embedded)
    print(
        "\ncelery e2e timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in seen["timings"].items())
    )
    yield seen


def test_every_service_came_up(celery_run):
    names = [name for name, alive in celery_run["status"] if alive]
    assert names == [
        "postgres",
        "redis",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker-1",
        "worker-2",
        "flower",
    ]


def test_flower_shows_both_workers_to_the_admin_only(celery_run):
    assert celery_run["flower"]["anonymous"] == 401
    assert celery_run["flower"]["workers"] == ["worker-1", "worker-2"]


def test_the_nightly_and_the_retrain_succeed(celery_run):
    assert "succeeded" in celery_run["shopflow_nightly"].stdout
    assert celery_run["shopflow_retrain"].returncode == 0


def test_tasks_ran_on_both_workers(celery_run):
    workers = {
        ti["hostname"].split("@")[0]
        for ti in celery_run["task_instances"]
        if ti["state"] == "success" and ti.get("hostname")
    }
    assert {"worker-1", "worker-2"} <= workers, workers


def test_a_worker_killed_mid_task_had_its_try_failed_and_retried(celery_run):
    killed = celery_run["killed"]
    assert killed["processes"] > 1  # the worker and the task processes under it
    tries = sorted(
        (t for t in celery_run["tries"] if t["task_id"] == KILLED_TASK),
        key=lambda t: t["try_number"],
    )
    first, last = tries[0], tries[-1]
    assert first["try_number"] == killed["try_number"]
    assert first["hostname"].split("@")[0] == killed["worker"]
    assert first["state"] in ("failed", "up_for_retry")
    assert last["state"] == "success" and last["try_number"] > first["try_number"]
    # the killed try ended (the scheduler failed it) before the retry started
    assert _parse(first["end_date"]) <= _parse(last["start_date"])
    out = celery_run["shopflow_nightly"].stdout
    assert f"{killed['worker']} stopped" in out, out[-3000:]
    assert celery_run["restarted"].returncode == 0, celery_run["restarted"].stderr[-3000:]


def test_no_two_warehouse_tasks_overlapped(celery_run):
    spans = sorted(
        (_parse(ti["start_date"]), _parse(ti["end_date"]), ti["task_id"], ti.get("map_index"))
        for ti in celery_run["tries"]
        if ti["pool"] == WAREHOUSE_POOL and ti["start_date"] and ti["end_date"]
    )
    assert len(spans) > 10
    overlaps = [(a, b) for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1]]
    assert overlaps == []


def test_published_rows_equal_the_in_process_night(celery_run):
    import pandas as pd

    celery, embedded = celery_run["exports"], celery_run["embedded_exports"]
    assert celery["types"] == embedded["types"]
    for table in ("recommendations", "demand_forecast"):
        assert len(celery[table]) > 0
        pd.testing.assert_frame_equal(celery[table], embedded[table])


def test_nothing_is_left_running(celery_run):
    assert celery_run["down"].returncode == 0, celery_run["down"].stderr
    assert celery_run["left"] == []
    assert celery_run["alive_after_down"] == []
    assert celery_run["ports_in_use"] == []
