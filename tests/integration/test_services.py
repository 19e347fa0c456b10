"""The services' supervision: taken port, missing data, killed scheduler, stale pid files."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import time

import psutil
import pytest

from shopflow.deploy.runs import _check_scheduler
from shopflow.deploy.services import ServiceError, pid_file, status
from tests.integration.conftest import make_deployment

pytestmark = pytest.mark.slow


def test_a_taken_port_is_a_clear_message_and_starts_nothing(tmp_path):
    deploy = make_deployment(tmp_path / "home")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", deploy.settings.airflow_port))
        squatter.listen()
        started = time.monotonic()
        done = deploy.shopflow("up", timeout=120)
    assert done.returncode == 1
    assert time.monotonic() - started < 60
    assert f"port {deploy.settings.airflow_port}" in done.stderr
    assert "SHOPFLOW_AIRFLOW_PORT" in done.stderr
    assert not any(s.alive or s.pid for s in status(deploy.settings))


def test_a_run_for_a_date_without_data_fails_fast_without_starting_airflow(tmp_path):
    deploy = make_deployment(tmp_path / "home")
    done = deploy.shopflow("run", "--date", "2030-01-01", timeout=120)
    assert done.returncode == 2
    assert "no complete order_lines partition for 2030-01-01" in done.stderr
    assert not any(s.pid for s in status(deploy.settings))


def test_a_killed_scheduler_is_reported_and_up_restarts_it_over_stale_pid_files(deployment):
    settings = deployment.settings
    scheduler = next(s for s in status(settings) if s.name == "scheduler")
    assert scheduler.alive
    os.killpg(scheduler.pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(scheduler.pid)], timeout=30)

    shown = deployment.shopflow("status", timeout=60)
    assert shown.returncode == 1
    assert "scheduler      dead" in shown.stdout
    with pytest.raises(ServiceError, match="shopflow up"):
        _check_scheduler(settings)  # what a waiting `shopflow run` reports

    # the pid file now names a live process that is not the scheduler (a recycled pid)
    pid_file(settings, "scheduler").write_text(json.dumps({"pid": os.getpid(), "started": 0.0}))
    assert not next(s for s in status(settings) if s.name == "scheduler").alive
    again = deployment.shopflow("up", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "started scheduler (local executor);" in again.stdout
    assert all(s.alive for s in status(settings))
    assert psutil.pid_exists(os.getpid())
    # idempotent: nothing to start the second time
    third = deployment.shopflow("up", timeout=300)
    assert third.returncode == 0 and "started" not in third.stdout


def test_the_nightly_waits_deferred_for_its_landing_marker(nightly):
    """Triggered without the shop's data (as a scheduled night is), the sensor defers to the
    triggerer, holding no pool slot, and succeeds once the partition's marker is written."""
    from shopflow.deploy.api import AirflowApi
    from shopflow.deploy.runs import _trigger, task_instances
    from shopflow.landing import marker_path

    settings = nightly.deployment.settings
    day = nightly.run_date - dt.timedelta(days=1)
    marker = marker_path(settings.landing_dir, "order_lines", day)
    marker.unlink()
    api = AirflowApi(settings)
    run_id = _trigger(api, "shopflow_nightly", day)["dag_run_id"]

    def sensor_state() -> str | None:
        tis = task_instances(api, "shopflow_nightly", run_id)
        return next(ti["state"] for ti in tis if ti["task_id"] == "wait_for_landing")

    try:
        _wait_for(lambda: sensor_state() == "deferred", 180)
        warehouse = api.get("/pools/shopflow_warehouse")
        assert warehouse["occupied_slots"] + warehouse["running_slots"] == 0
        marker.touch()
        _wait_for(lambda: sensor_state() == "success", 180)
    finally:
        marker.touch()
        api.patch(f"/dags/shopflow_nightly/dagRuns/{run_id}", {"state": "failed"})


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(2)


def test_backfill_runs_each_date_through_airflows_backfill(nightly):
    day = (nightly.run_date - dt.timedelta(days=2)).isoformat()
    done = nightly.deployment.shopflow("backfill", "--start", day, "--end", day)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"  {day} (backfill__" in done.stdout and ": success" in done.stdout
    assert "1 runs succeeded" in done.stdout
