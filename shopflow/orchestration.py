"""Airflow wiring shared by the DAG files. Light on purpose: DAG files import it at parse time."""

from __future__ import annotations

import datetime as dt

WAREHOUSE_POOL = "shopflow_warehouse"


def default_args() -> dict:
    """Task defaults: infrastructure errors are retried; data errors fail fast (see pipeline)."""
    return {
        "owner": "shopflow",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": True,
        # one slot: tasks touching the warehouse DuckDB file never run concurrently
        "pool": WAREHOUSE_POOL,
        # mails on-call when SHOPFLOW_ALERT_EMAILS is set (off by default)
        "on_failure_callback": failure_notifier(),
    }


def failure_notifier():
    """The tasks' failure notifier (imports Airflow's SDK: call it from DAG files only)."""
    from shopflow.oncall_notifier import FailureEmailNotifier

    return FailureEmailNotifier()
