"""The nightly DAG shows one task per dbt model from a single `dbt build`."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from shopflow.dbt import DbtResult, _read_run_results, node_reports
from shopflow.jobs.steps import check_dbt_model


@pytest.fixture(scope="module")
def reports(built_home):
    settings, _ = built_home
    results = _read_run_results(settings.home / "dbt" / "target")
    return node_reports(settings, DbtResult(["dbt", "build"], 0.0, results)), results


def test_every_model_gets_one_report_with_its_tests(reports, built_home):
    settings, _ = built_home
    by_model, results = reports
    manifest = json.loads((settings.home / "dbt" / "target" / "manifest.json").read_text())
    models = sorted(n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model")
    assert [r["model"] for r in by_model] == models
    tests = [r for r in results if r["unique_id"].startswith(("test.", "unit_test."))]
    attached = sum(r["tests"] for r in by_model)
    assert 0 < attached <= len(tests)
    fct_orders = next(r for r in by_model if r["model"] == "fct_orders")
    assert fct_orders["tests"] >= 2  # unique + not_null on order_id
    assert all(r["status"] == "success" and r["failed_tests"] == [] for r in by_model)


def test_a_successful_model_passes():
    report = {
        "model": "m",
        "status": "success",
        "message": None,
        "seconds": 0.5,
        "failed_tests": [],
        "tests": 3,
    }
    assert check_dbt_model(report) == {"model": "m", "seconds": 0.5, "tests": 3}


def test_a_failed_test_fails_its_model_task_in_plain_words():
    report = {
        "model": "fct_orders",
        "status": "success",
        "message": None,
        "seconds": 0.5,
        "failed_tests": ["unique_fct_orders_order_id: Got 2 results, configured to fail if != 0"],
        "tests": 2,
    }
    with pytest.raises(AirflowFailException) as failure:
        check_dbt_model(report)
    assert str(failure.value).startswith(
        "dbt model fct_orders failed: unique_fct_orders_order_id: Got 2 results"
    )


def test_a_skipped_model_fails_naming_the_reason():
    report = {
        "model": "dim_products",
        "status": "skipped",
        "message": None,
        "seconds": 0,
        "failed_tests": [],
        "tests": 0,
    }
    with pytest.raises(AirflowFailException, match="skipped: an upstream model or test failed"):
        check_dbt_model(report)


def test_a_skipped_model_names_the_failure_upstream_and_the_real_log_path(tmp_path):
    log = str(tmp_path / "dbt" / "logs" / "dbt.log")
    report = {
        "model": "dim_products",
        "status": "skipped",
        "message": None,
        "seconds": 0,
        "failed_tests": [],
        "tests": 0,
        "upstream_failures": ["accepted_values_fct_order_lines_currency: Got 1 result"],
        "log_path": log,
    }
    with pytest.raises(AirflowFailException) as failure:
        check_dbt_model(report)
    assert str(failure.value).startswith(
        "dbt model dim_products failed: skipped: an upstream model or test failed "
        "(accepted_values_fct_order_lines_currency: Got 1 result). "
        f"Full log: {log}"
    )
