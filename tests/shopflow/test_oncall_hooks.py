"""The on-call hooks in the task entry points: guidance on data errors, check_published
skipped when there is nothing to check, and the failure e-mail."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from shopflow.deploy.services import free_port_block
from shopflow.ingest import LandingFormatError
from shopflow.jobs import steps
from shopflow.jobs.rollback import NothingToCheck, check_after_publish

DAY = dt.date(2025, 4, 10)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHOPFLOW_UI_URL", "http://airflow.test:8080")
    return tmp_path / "home"


def test_a_data_error_fails_the_task_with_what_to_do_and_the_runbook_link(home, monkeypatch):
    def broken(settings, run_date):
        raise LandingFormatError("landing/order_lines/2025-04-10/a.csv: the file is empty")

    monkeypatch.setitem(steps.NIGHTLY_STEPS, "ingest_landing", broken)
    with pytest.raises(AirflowFailException) as failed:
        steps.run_step("ingest_landing", DAY.isoformat())
    lines = str(failed.value).splitlines()
    assert lines[0] == "ingest_landing for 2025-04-10: landing/order_lines/2025-04-10/a.csv: " + (
        "the file is empty"
    )
    assert lines[1].startswith("What to do: the file named above cannot be read")
    assert lines[2] == (
        "Runbook: http://airflow.test:8080/shopflow/docs/runbooks/quality_gate.md"
        "#reading-a-file-ingest_landing-landingformaterror-blocking"
    )


def test_a_failed_dbt_model_says_what_to_do():
    report = {
        "model": "fct_order_lines",
        "status": "success",
        "message": "",
        "failed_tests": ["not_null_fct_order_lines_product_id: 3 failing rows"],
    }
    with pytest.raises(AirflowFailException) as failed:
        steps.check_dbt_model(report)
    message = str(failed.value)
    assert message.startswith("dbt model fct_order_lines failed: not_null_fct_order_lines")
    assert "/shopflow/docs/runbooks/dbt_build.md#a-model-or-a-dbt-test-failed" in message


def test_first_night_without_exports_has_nothing_to_check(home):
    """A new home whose first night failed upstream: no export file, no registry, no
    warehouse. Reading the missing export used to crash ("Cannot open database")."""
    from shopflow.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    assert not settings.published_db_path.exists()
    with pytest.raises(NothingToCheck, match="nothing was published for 2025-04-10"):
        check_after_publish(settings, DAY)


def test_check_published_is_skipped_not_failed_when_upstream_failed(home):
    with pytest.raises(AirflowSkipException, match="nothing to check: nothing was published"):
        steps.run_step("check_published", DAY.isoformat())


@pytest.fixture
def smtp_sink():
    """A local SMTP server on a free loopback port; yields the list of received messages."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    port = free_port_block()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


class FakeTI:
    dag_id = "shopflow_nightly"
    task_id = "ingest_landing"
    run_id = "nightly__2025-04-10"
    map_index = -1


def failure_context() -> dict:
    message = (
        "ingest_landing for 2025-04-10: Data quality gate stopped the run: ...\n"
        "What to do: fix the file, then clear this task.\n"
        "Runbook: http://airflow.test:8080/shopflow/docs/runbooks/quality_gate.md#where-to-look"
    )
    return {"ti": FakeTI(), "ds": "2025-04-10", "exception": AirflowFailException(message)}


def test_failure_email_is_off_by_default(home, smtp_sink, monkeypatch):
    from shopflow.oncall_notifier import FailureEmailNotifier

    port, received = smtp_sink
    monkeypatch.setenv("AIRFLOW_CONN_SHOPFLOW_SMTP", f"smtp://127.0.0.1:{port}")
    monkeypatch.delenv("SHOPFLOW_ALERT_EMAILS", raising=False)
    FailureEmailNotifier()(failure_context())
    time.sleep(0.2)
    assert received == []


def test_failure_email_carries_the_failure_summary(home, smtp_sink, monkeypatch):
    from shopflow.jobs.steps import default_args

    port, received = smtp_sink
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHOPFLOW_SMTP", f"smtp://127.0.0.1:{port}?from_email=airflow%40shop.test"
    )
    monkeypatch.setenv("SHOPFLOW_ALERT_EMAILS", "oncall@shop.test, data@shop.test")
    notifier = default_args()["on_failure_callback"]  # what every task gets
    notifier(failure_context())

    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    (mail,) = received
    assert mail["Subject"] == "[Shopflow] shopflow_nightly.ingest_landing failed for 2025-04-10"
    assert mail["From"] == "airflow@shop.test"
    assert mail["To"] == "oncall@shop.test, data@shop.test"
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "Task: shopflow_nightly.ingest_landing\n" in body
    assert "Business date: 2025-04-10 (run nightly__2025-04-10)" in body
    assert (
        "Log: http://airflow.test:8080/dags/shopflow_nightly/runs/nightly__2025-04-10"
        "/tasks/ingest_landing" in body
    )
    assert failure_context()["exception"].args[0] in body  # the task's own message, whole


def test_an_infrastructure_failure_email_still_says_what_to_do(home):
    from shopflow.oncall import failure_summary
    from shopflow.settings import load_settings

    subject, body = failure_summary(
        dag_id="shopflow_nightly",
        task_id="build_warehouse",
        run_id="nightly__2025-04-10",
        ds="2025-04-10",
        message="IO Error: could not set lock on file",
        settings=load_settings(),
    )
    assert body.endswith(
        "What to do: read the message above, fix its cause, then clear this task in the Airflow "
        "UI (downstream tasks follow).\n"
        "Runbook: http://airflow.test:8080/shopflow/docs/runbooks/quality_gate.md#how-to-rerun"
    )
