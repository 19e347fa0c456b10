"""End to end: shopflow_nightly through the scheduler of a running deployment (`shopflow run`)
on a tiny shop: outputs, idempotent reruns, concurrent requests, logs through the API."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml.recommend.baselines import NEW_CUSTOMER
from shopflow.deploy.api import AirflowApi
from shopflow.deploy.runs import find_run, run_id_for, task_instances, task_log

pytestmark = pytest.mark.slow


def test_output_contract_columns_and_types(nightly):
    assert nightly.first["types"] == [
        ("demand_forecast", "run_date", "DATE"),
        ("demand_forecast", "product_id", "VARCHAR"),
        ("demand_forecast", "forecast_date", "DATE"),
        ("demand_forecast", "horizon_days", "INTEGER"),
        ("demand_forecast", "units_mean", "DOUBLE"),
        ("demand_forecast", "units_p10", "DOUBLE"),
        ("demand_forecast", "units_p50", "DOUBLE"),
        ("demand_forecast", "units_p90", "DOUBLE"),
        ("demand_forecast", "model_version", "VARCHAR"),
        ("recommendations", "run_date", "DATE"),
        ("recommendations", "customer_id", "VARCHAR"),
        ("recommendations", "rank", "INTEGER"),
        ("recommendations", "product_id", "VARCHAR"),
        ("recommendations", "score", "DOUBLE"),
        ("recommendations", "reason", "VARCHAR"),
        ("recommendations", "model_version", "VARCHAR"),
    ]


def test_every_known_customer_and_new_visitors_get_ranks_1_to_10(nightly):
    """The ranker's customers (an order in the last 90 days), every other customer known from
    the last 365 days (a baseline's list) and the reserved id for visitors without a history."""
    settings = nightly.deployment.settings
    recs = nightly.first["recommendations"]
    assert set(recs["run_date"].astype(str)) == {nightly.run_date.isoformat()}
    lines = pd.concat(
        pd.read_parquet(p) for p in (settings.landing_dir / "order_lines").glob("*/*.parquet")
    )
    bought = lines[lines["customer_id"].notna() & (lines["quantity"] > 0)]
    age = pd.Timestamp(nightly.run_date) - bought["ordered_at"]
    recent = set(bought.loc[age < pd.Timedelta(days=89), "customer_id"])
    known = set(bought.loc[age < pd.Timedelta(days=365), "customer_id"])
    listed = set(recs["customer_id"])
    assert recent <= listed
    assert listed - {NEW_CUSTOMER} <= known
    assert NEW_CUSTOMER in listed
    ranks = recs.groupby("customer_id")["rank"].apply(list)
    assert all(r == list(range(1, 11)) for r in ranks)
    assert not recs.duplicated(["customer_id", "product_id"]).any()


def test_forecast_has_28_horizons_and_ordered_quantiles(nightly):
    forecast = nightly.first["demand_forecast"]
    assert len(forecast) > 0
    per_product = forecast.groupby("product_id")["horizon_days"].apply(sorted)
    assert all(h == list(range(1, 29)) for h in per_product)
    assert (forecast["forecast_date"] - pd.Timestamp(nightly.run_date)).dt.days.tolist() == (
        forecast["horizon_days"].tolist()
    )
    assert (forecast["units_p10"] >= 0).all()
    assert (forecast["units_p10"] <= forecast["units_p50"]).all()
    assert (forecast["units_p50"] <= forecast["units_p90"]).all()
    assert (forecast["units_mean"] >= 0).all()


def test_every_published_product_is_named_in_the_products_export(nightly):
    """An analyst joins the lists and forecasts to exports.products for names and categories."""
    products = nightly.first["products"].set_index("product_id")
    referred = set(nightly.first["recommendations"]["product_id"]) | set(
        nightly.first["demand_forecast"]["product_id"]
    )
    assert referred <= set(products.index)
    named = products.loc[sorted(referred)]
    assert named["product_name"].notna().all() and (named["product_name"] != "").all()
    assert named["category"].notna().all()  # the generated shop sends a category per product
    assert not named["is_non_product"].any()
    assert set(products["as_of_date"].astype(str)) == {nightly.run_date.isoformat()}


def test_second_run_leaves_identical_rows(nightly):
    pd.testing.assert_frame_equal(
        nightly.first["recommendations"], nightly.second["recommendations"]
    )
    pd.testing.assert_frame_equal(
        nightly.first["demand_forecast"], nightly.second["demand_forecast"]
    )


def test_parquet_mirror_matches_the_database(nightly):
    settings = nightly.deployment.settings
    folder = settings.exports_dir / "recommendations" / f"run_date={nightly.run_date}"
    mirrored = pd.read_parquet(folder).sort_values(["customer_id", "rank"], ignore_index=True)
    assert len(mirrored) == len(nightly.first["recommendations"])
    assert list(mirrored["product_id"]) == list(nightly.first["recommendations"]["product_id"])


def test_the_run_names_its_business_date_and_its_interval_is_that_day(nightly):
    api = AirflowApi(nightly.deployment.settings)
    run = find_run(api, "shopflow_nightly", nightly.run_date)
    day = nightly.run_date.isoformat()
    assert run["dag_run_id"] == run_id_for("shopflow_nightly", nightly.run_date)
    assert run["dag_run_id"] == f"nightly__{day}"
    assert run["logical_date"].startswith(f"{day}T00:00:00")
    assert run["data_interval_start"].startswith(f"{day}T00:00:00")
    next_day = (nightly.run_date + dt.timedelta(days=1)).isoformat()
    assert run["data_interval_end"].startswith(f"{next_day}T00:00:00")
    # one plain line per task state change (stdout is not a terminal)
    assert "  wait_for_landing: success" in nightly.first_output
    assert "  publish_exports: success" in nightly.first_output


def test_same_date_twice_at_once_is_one_run_replaced_not_duplicated(nightly):
    codes = [code for code, _ in nightly.concurrent]
    outputs = [out for _, out in nightly.concurrent]
    assert codes == [0, 0], outputs
    assert sum("clearing it to run it again" in out for out in outputs) == 1, outputs
    assert sum("waiting for that run" in out for out in outputs) == 1, outputs
    api = AirflowApi(nightly.deployment.settings)
    runs = api.get("/dags/shopflow_nightly/dagRuns")["dag_runs"]
    assert [r["dag_run_id"] for r in runs] == [f"nightly__{nightly.run_date}"]
    assert runs[0]["state"] == "success"


def test_task_logs_are_readable_through_the_api(nightly):
    api = AirflowApi(nightly.deployment.settings)
    run_id = run_id_for("shopflow_nightly", nightly.run_date)
    ingest = next(
        ti
        for ti in task_instances(api, "shopflow_nightly", run_id)
        if ti["task_id"] == "ingest_landing"
    )
    events = [str(line.get("event")) for line in task_log(api, "shopflow_nightly", run_id, ingest)]
    assert not any("Could not read served logs" in e for e in events)
    # the task's own result, as Airflow logged it when the task returned
    returned = [e for e in events if "Returned value was" in e]
    assert returned and f"'run_date': '{nightly.run_date}'" in returned[-1], events[-20:]
