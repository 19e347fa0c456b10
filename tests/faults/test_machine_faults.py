"""Machine errors said plainly and at once: a reader holding the warehouse, a full disk under
dbt, a denied path. Each fails the task without retries, naming the path and what to do."""

from __future__ import annotations

import datetime as dt
import errno
import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowFailException

from shopflow import dbt, machine
from shopflow.jobs import steps
from shopflow.warehouse import connect
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.faults

DAY = dt.date(2025, 4, 10)

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # a read-write session, as a careless notebook opens it
con.execute("create table if not exists t as select 1 as x")
print("holding", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHOPFLOW_UI_URL", "http://airflow.test:8080")
    from shopflow.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    return settings


def test_a_process_holding_the_warehouse_is_named_at_once(home, monkeypatch):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home.warehouse_path)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(machine.FileHeldError) as held:
            with connect(home, read_only=True):
                pass
        assert f"PID {holder.pid}" in str(held.value)

        def step(settings, run_date):
            with connect(settings):
                pass

        monkeypatch.setitem(steps.NIGHTLY_STEPS, "ingest_landing", step)
        with pytest.raises(AirflowFailException) as failed:  # fails at once: no retries
            steps.run_step("ingest_landing", DAY.isoformat())
        message = str(failed.value)
        assert f"PID {holder.pid}" in message and "-c" in message
        assert "runbooks/machine.md#a-file-is-held-by-another-process" in message
    finally:
        holder.kill()
        holder.wait()


def test_dbt_saying_only_see_the_log_is_explained_from_its_log(home, tmp_path):
    log_file = tmp_path / "dbt.log"
    log_file.write_text(
        "old run: fine\n"
        "12:00:01 Unhandled error while executing model.shopflow.fct_order_lines\n"
        "IO Error: Could not write file: No space left on device\n"
    )
    with pytest.raises(machine.DiskFullError, match="disk is full"):
        dbt._raise_machine_error(
            home, log_file, len("old run: fine\n"), "See the log for the traceback"
        )
    dbt._raise_machine_error(home, log_file, log_file.stat().st_size, "")  # nothing new: no error


def test_too_little_free_space_stops_the_build_before_it_starts(home, monkeypatch):
    monkeypatch.setattr(dbt, "MIN_FREE_BYTES", 1 << 60)
    with pytest.raises(machine.DiskFullError) as full:
        dbt.run_dbt(home, ["build"], DAY)
    message = str(full.value)
    assert "the dbt build" in message and str(home.warehouse_dir) in message and "free" in message


def test_permission_denied_and_full_disk_fail_the_task_at_once_with_the_path(home, monkeypatch):
    for number, anchor in (
        (errno.EACCES, "#permission-denied"),
        (errno.ENOSPC, "#the-disk-is-full"),
    ):

        def step(settings, run_date, number=number):
            raise OSError(number, "refused", str(settings.warehouse_path))

        monkeypatch.setitem(steps.NIGHTLY_STEPS, "build_warehouse", step)
        with pytest.raises(AirflowFailException) as failed:
            steps.run_step("build_warehouse", DAY.isoformat())
        assert str(home.warehouse_path) in str(failed.value)
        assert f"runbooks/machine.md{anchor}" in str(failed.value)
