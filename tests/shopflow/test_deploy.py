"""The local deployment's pieces that need no running Airflow: landing markers, fail-fast
checks, run naming, pid files, the admin password and the environment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import stat

import pandas as pd
import psutil
import pytest

from shopflow.deploy.env import admin_password, airflow_env, passwords_file
from shopflow.deploy.runs import MissingLandingDataError, check_landing, error_message, run_id_for
from shopflow.deploy.services import pid_file, status
from shopflow.landing import COMPLETE_MARKER, CONTRACT, is_complete, write_partition
from tests.conftest import make_settings

DAY = dt.date(2025, 12, 31)


def _lines() -> pd.DataFrame:
    row = {
        "order_id": "o1", "line_number": 1, "ordered_at": pd.Timestamp("2025-12-31 10:00"),
        "customer_id": "c1", "product_id": "p1", "quantity": 1, "unit_price": 2.5,
        "currency": "EUR", "country": "DE",
    }  # fmt: skip
    return pd.DataFrame([row])[list(CONTRACT["order_lines"])]


def test_write_partition_marks_the_partition_complete_after_its_last_file(settings):
    write_partition(_lines(), settings.landing_dir, "order_lines", DAY, complete=False)
    assert not is_complete(settings.landing_dir, "order_lines", DAY)
    write_partition(_lines(), settings.landing_dir, "order_lines", DAY, file_name="part-1.parquet")
    assert is_complete(settings.landing_dir, "order_lines", DAY)
    # rewriting a file of a complete partition with more to come withdraws the marker
    write_partition(_lines(), settings.landing_dir, "order_lines", DAY, complete=False)
    assert not (settings.landing_dir / "order_lines" / DAY.isoformat() / COMPLETE_MARKER).exists()


def test_a_run_for_a_date_without_complete_data_fails_fast_and_says_why(settings):
    with pytest.raises(MissingLandingDataError, match="load it first"):
        check_landing(settings, "shopflow_nightly", [DAY])
    write_partition(_lines(), settings.landing_dir, "order_lines", DAY, complete=False)
    with pytest.raises(MissingLandingDataError, match="no _SUCCESS marker"):
        check_landing(settings, "shopflow_nightly", [DAY])
    write_partition(_lines(), settings.landing_dir, "order_lines", DAY)
    check_landing(settings, "shopflow_nightly", [DAY])
    check_landing(settings, "shopflow_retrain", [dt.date(2030, 1, 1)])  # no landing rule


def test_run_ids_name_the_business_date():
    assert run_id_for("shopflow_nightly", DAY) == "nightly__2025-12-31"
    assert run_id_for("shopflow_retrain", DAY) == "retrain__2025-12-31"


def test_error_message_is_the_exception_the_task_failed_with():
    lines = [
        {"event": "starting", "level": "info"},
        {
            "event": "Task failed with exception",
            "level": "error",
            "error_detail": [{"exc_type": "AirflowFailException", "exc_value": "bad file x.csv"}],
        },
    ]
    assert error_message(lines) == "AirflowFailException: bad file x.csv"
    assert error_message([{"event": "boom", "level": "error"}]) == "boom"


def test_a_pid_file_counts_only_for_the_process_that_wrote_it(settings):
    settings.airflow_services_dir.mkdir(parents=True)
    me = psutil.Process()
    pid_file(settings, "scheduler").write_text(
        json.dumps({"pid": me.pid, "started": me.create_time()})
    )
    pid_file(settings, "triggerer").write_text(json.dumps({"pid": me.pid, "started": 0.0}))
    alive = {s.name: s.alive for s in status(settings)}
    assert alive == {
        "api-server": False, "scheduler": True, "dag-processor": False, "triggerer": False,
    }  # fmt: skip


def test_the_admin_password_is_generated_once_and_private(tmp_path):
    settings = make_settings(tmp_path / "home")
    first = admin_password(settings)
    assert len(first) >= 12 and admin_password(settings) == first
    assert stat.S_IMODE(os.stat(passwords_file(settings)).st_mode) == 0o600
    chosen = dataclasses.replace(settings, airflow_admin_password="chosen-one")
    assert admin_password(chosen) == "chosen-one"
    assert json.loads(passwords_file(settings).read_text()) == {"admin": "chosen-one"}


def test_the_execution_api_url_follows_the_port(tmp_path):
    from shopflow.settings import load_settings

    settings = load_settings({"SHOPFLOW_HOME": str(tmp_path), "SHOPFLOW_AIRFLOW_PORT": "18123"})
    env = airflow_env(settings)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["AIRFLOW__API__BASE_URL"] == "http://localhost:18123"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "18124"


def test_up_on_another_port_than_the_running_one_says_so_at_once(settings):
    from shopflow.deploy.services import ServiceError, up

    settings.airflow_services_dir.mkdir(parents=True)
    me = psutil.Process()
    record = {"pid": me.pid, "started": me.create_time(), "port": settings.airflow_port + 7}
    pid_file(settings, "api-server").write_text(json.dumps(record))
    with pytest.raises(ServiceError, match=f"already up on port {settings.airflow_port + 7}"):
        up(settings, say=lambda _: None)


def test_a_locked_metadata_database_is_retried_for_idempotent_calls_only(settings, monkeypatch):
    """The SQLite metadata database answers HTTP 500 while another write holds it: a GET or a
    PATCH is tried again (twice), a POST is not (it may have happened)."""
    from shopflow.deploy import api as api_module
    from shopflow.deploy.api import AirflowApi, ApiError

    calls: list[str] = []
    answers = {"GET": [500, 500, 200], "PATCH": [500, 500, 500], "POST": [500, 200]}

    def send(self, method, path, body=None, params=None, token=None):
        calls.append(method)
        status = answers[method].pop(0)
        if status != 200:
            raise ApiError(status, method, path, "database is locked")
        return {"ok": True}

    monkeypatch.setattr(AirflowApi, "_send", send)
    monkeypatch.setattr(AirflowApi, "token", lambda self: "token")
    monkeypatch.setattr(api_module, "RETRY_PAUSE_SECONDS", 0.0)
    client = AirflowApi(settings)
    assert client.get("/dags") == {"ok": True}
    with pytest.raises(ApiError, match="HTTP 500"):
        client.patch("/dags/x", {"is_paused": False})
    with pytest.raises(ApiError, match="HTTP 500"):
        client.post("/dags/x/clear", {})
    assert calls == ["GET"] * 3 + ["PATCH"] * 3 + ["POST"]
