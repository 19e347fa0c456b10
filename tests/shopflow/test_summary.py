"""A run's final summary reaches stderr whole when the log beside it is on a full disk."""

from __future__ import annotations

import datetime as dt
import errno
import io
import logging

import pytest
from airflow.sdk.exceptions import AirflowFailException

from shopflow import cli, machine
from shopflow.deploy import runs
from shopflow.jobs import steps
from shopflow.summary import emit_summary

SUMMARY = "shopflow_nightly run nightly__2025-04-10 failed.\ntask build_warehouse failed: disk full"


class FullDisk(io.TextIOBase):
    """A log file on a full disk: the first write takes a few bytes, then every write fails."""

    def __init__(self) -> None:
        self.kept = ""

    def write(self, text: str) -> int:
        if not self.kept:
            self.kept = text[:7]  # the log stops mid-line
        raise OSError(errno.ENOSPC, "No space left on device")


class RaisingHandler(logging.Handler):
    """A handler that lets its write error out instead of calling handleError."""

    def emit(self, record: logging.LogRecord) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def logger():
    logger = logging.getLogger("tests.summary")
    logger.propagate = False
    yield logger
    logger.handlers.clear()


def test_the_summary_reaches_stderr_whole_when_the_log_handler_cannot_write(
    logger, capsys, monkeypatch
):
    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError says nothing
    disk = FullDisk()
    logger.addHandler(logging.StreamHandler(disk))
    emit_summary(SUMMARY, logger)
    assert disk.kept and disk.kept != SUMMARY  # the log got a cut line at most
    assert capsys.readouterr().err == SUMMARY + "\n"


def test_a_handler_raising_enospc_neither_escapes_nor_cuts_the_summary(logger, capsys):
    logger.addHandler(RaisingHandler())
    emit_summary(SUMMARY, logger)  # does not raise
    err = capsys.readouterr().err
    assert err.startswith(SUMMARY + "\n")
    assert "the log could not take this summary" in err and "No space left" in err


def test_a_stderr_on_the_full_disk_still_leaves_the_summary_to_the_log(logger):
    kept = io.StringIO()
    logger.addHandler(logging.StreamHandler(kept))
    emit_summary(SUMMARY, logger, stream=FullDisk())
    assert kept.getvalue() == SUMMARY + "\n"


def test_a_failed_task_says_its_cause_on_stderr_when_its_log_cannot_write(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SHOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(steps, "log", logging.getLogger("tests.summary.steps"))
    steps.log.propagate = False
    steps.log.addHandler(RaisingHandler())

    def step(settings, run_date):
        raise OSError(errno.ENOSPC, "No space left on device", str(settings.warehouse_path))

    monkeypatch.setitem(steps.NIGHTLY_STEPS, "build_warehouse", step)
    try:
        with pytest.raises(AirflowFailException) as failed:  # not the handler's OSError
            steps.run_step("build_warehouse", dt.date(2025, 4, 10).isoformat())
    finally:
        steps.log.handlers.clear()
    err = capsys.readouterr().err
    assert err.startswith("build_warehouse for 2025-04-10 failed on the machine (not retried):\n")
    assert str(failed.value) in err and "disk is full" in err


def test_shopflow_run_says_the_failure_on_stderr(capsys):
    assert cli._run_failed(RuntimeError(SUMMARY)) == 1
    assert capsys.readouterr().err == f"FAILED: {SUMMARY}\n"


class FakeApi:
    """The Airflow API of a run whose failed task's log was cut before its error."""

    def get(self, path: str, **params):
        if path.endswith("/taskInstances"):
            return {"task_instances": [{"task_id": "build_warehouse", "state": "failed"}]}
        return {"content": [{"event": "dbt | 22:49:14  88 of 92 START sql incr", "level": "info"}]}


def test_a_failed_task_whose_log_was_cut_is_reported_with_the_full_disk(settings, monkeypatch):
    monkeypatch.setattr(machine, "free_bytes", lambda path: machine.NEARLY_FULL_BYTES)
    report = runs.failure_report(settings, FakeApi(), "shopflow_nightly", "nightly__2025-04-10")
    assert runs.NO_ERROR_IN_LOG in report and "disk is full" not in report  # room there
    monkeypatch.setattr(machine, "free_bytes", lambda path: 12_000)
    report = runs.failure_report(settings, FakeApi(), "shopflow_nightly", "nightly__2025-04-10")
    first = report.splitlines()[0]
    assert first.startswith("task build_warehouse failed: no error message in the log; ")
    assert "the disk is full: 11.7 KB free" in first and str(settings.airflow_home) in first
