"""End to end: shopflow_nightly through Airflow (`airflow dags test`) on a tiny shop."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from shopflow.airflow_runner import run_dag
from shopflow.generator import generate_shop
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.slow


def _exports(settings) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        return {
            "recommendations": con.execute(
                "select * from exports.recommendations order by run_date, customer_id, rank"
            ).df(),
            "demand_forecast": con.execute(
                "select * from exports.demand_forecast order by run_date, product_id, forecast_date"
            ).df(),
            "types": con.execute(
                "select table_name, column_name, data_type from information_schema.columns "
                "where table_schema = 'exports' and table_name in "
                "('recommendations', 'demand_forecast') order by table_name, ordinal_position"
            ).fetchall(),
            "active": con.execute("select 1").fetchall(),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    from tests.conftest import make_settings

    settings = make_settings(tmp_path_factory.mktemp("e2e") / "home")
    settings.ensure_dirs()
    shop = generate_shop(TINY_SPEC, settings.landing_dir)
    run_dag(settings, "shopflow_nightly", shop.last_date)
    first = _exports(settings)
    run_dag(settings, "shopflow_nightly", shop.last_date)
    second = _exports(settings)
    return settings, shop, first, second


def test_output_contract_columns_and_types(nightly):
    _, _, first, _ = nightly
    assert first["types"] == [
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


def test_every_recent_customer_gets_ranks_1_to_10(nightly):
    settings, shop, first, _ = nightly
    recs = first["recommendations"]
    assert set(recs["run_date"].astype(str)) == {shop.last_date.isoformat()}
    lines = pd.concat(
        pd.read_parquet(p) for p in (settings.landing_dir / "order_lines").glob("*/*.parquet")
    )
    recent = lines[
        (lines["ordered_at"] > pd.Timestamp(shop.last_date) - pd.Timedelta(days=89))
        & lines["customer_id"].notna()
        & (lines["quantity"] > 0)
    ]
    assert set(recs["customer_id"]) == set(recent["customer_id"])
    ranks = recs.groupby("customer_id")["rank"].apply(list)
    assert all(r == list(range(1, 11)) for r in ranks)
    assert not recs.duplicated(["customer_id", "product_id"]).any()


def test_forecast_has_28_horizons_and_ordered_quantiles(nightly):
    _, shop, first, _ = nightly
    forecast = first["demand_forecast"]
    assert len(forecast) > 0
    per_product = forecast.groupby("product_id")["horizon_days"].apply(sorted)
    assert all(h == list(range(1, 29)) for h in per_product)
    assert (forecast["forecast_date"] - pd.Timestamp(shop.last_date)).dt.days.tolist() == (
        forecast["horizon_days"].tolist()
    )
    assert (forecast["units_p10"] >= 0).all()
    assert (forecast["units_p10"] <= forecast["units_p50"]).all()
    assert (forecast["units_p50"] <= forecast["units_p90"]).all()
    assert (forecast["units_mean"] >= 0).all()


def test_second_run_leaves_identical_rows(nightly):
    _, _, first, second = nightly
    pd.testing.assert_frame_equal(first["recommendations"], second["recommendations"])
    pd.testing.assert_frame_equal(first["demand_forecast"], second["demand_forecast"])


def test_parquet_mirror_matches_the_database(nightly):
    settings, shop, first, _ = nightly
    folder = settings.exports_dir / "recommendations" / f"run_date={shop.last_date}"
    mirrored = pd.read_parquet(folder).sort_values(["customer_id", "rank"], ignore_index=True)
    assert len(mirrored) == len(first["recommendations"])
    assert list(mirrored["product_id"]) == list(first["recommendations"]["product_id"])
