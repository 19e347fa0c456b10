"""The dbt project itself: unit tests pass, docs generate, every model documents its grain."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from shopflow.dbt import run_dbt

# The unit tests of the warehouse's non-trivial logic (dbt `unit_tests:` in the marts YAML).
WAREHOUSE_UNIT_TESTS = {
    "fct_product_daily_demand_nets_cancellations_against_sales",
    "fct_product_daily_demand_zero_fills_from_first_sale_to_run_date",
    "fct_product_daily_demand_incremental_run_computes_only_days_after_the_last_row",
    "dim_products_current_name_and_sellable",
    "dim_customers_recency_frequency_monetary",
}


@pytest.fixture(scope="module")
def docs(built_home, tmp_path_factory) -> dict:
    """`dbt docs generate` on the built tiny warehouse: its manifest and catalog."""
    settings, run_date = built_home
    target = tmp_path_factory.mktemp("docs_target")
    run_dbt(settings, ["docs", "generate"], run_date, target_dir=target)
    return {
        name: json.loads((target / f"{name}.json").read_text()) for name in ("manifest", "catalog")
    }


def test_warehouse_unit_tests_pass(built_home, tmp_path):
    settings, run_date = built_home
    result = run_dbt(
        settings, ["test", "--select", "test_type:unit"], run_date, target_dir=tmp_path
    )
    statuses = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in result.results}
    assert {name: statuses.get(name) for name in WAREHOUSE_UNIT_TESTS} == dict.fromkeys(
        WAREHOUSE_UNIT_TESTS, "pass"
    )


def test_docs_catalog_has_every_model_with_its_columns(docs):
    models = {
        node["name"]
        for node in docs["manifest"]["nodes"].values()
        if node["resource_type"] == "model"
    }
    catalogued = {node["metadata"]["name"] for node in docs["catalog"]["nodes"].values()}
    assert models - catalogued == set()
    demand = docs["catalog"]["nodes"]["model.shopflow.fct_product_daily_demand"]
    assert {"units_sold", "units_returned", "net_units", "net_revenue"} <= set(demand["columns"])


def test_every_model_states_its_grain(docs):
    undocumented = sorted(
        node["name"]
        for node in docs["manifest"]["nodes"].values()
        if node["resource_type"] == "model" and "One row per" not in node["description"]
    )
    assert undocumented == []


def test_every_mart_column_is_described(docs):
    missing = sorted(
        f"{node['metadata']['name']}.{column}"
        for node in docs["catalog"]["nodes"].values()
        if node["metadata"]["schema"] == "marts"
        for column in node["columns"]
        if not docs["manifest"]["nodes"][node["unique_id"]]["columns"]
        .get(column, {})
        .get("description")
    )
    assert missing == []


def _order_lines(settings) -> int:
    from shopflow.warehouse import connect

    with connect(settings, read_only=True) as con:
        return con.execute("select count(*) from marts.fct_order_lines").fetchone()[0]


def _rounded_rows(con, table: str) -> list[tuple]:
    """A features table's rows in a fixed order, floats to 9 places (sums of doubles may add
    up in another order from one build to the next)."""
    rows = con.execute(f"select * from features.{table} order by all").fetchall()
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


def test_a_first_build_runs_one_model_at_a_time_and_later_builds_overlap(tmp_path, monkeypatch):
    # dbt's models share one DuckDB memory limit: a build that computes every model in full
    # runs them one at a time, a nightly increment with the profile's threads
    from shopflow import dbt as dbt_module
    from shopflow.dbt import (
        FULL_BUILD_THREADS,
        PER_CUTOFF_FEATURES,
        build_training_features,
        build_warehouse,
        is_first_build,
        training_cutoff_offsets,
    )
    from shopflow.generator import generate_shop
    from shopflow.ingest import ingest_landing
    from shopflow.warehouse import connect
    from tests.conftest import TINY_SPEC, make_settings

    settings = make_settings(tmp_path / "home")
    settings.ensure_dirs()
    assert is_first_build(settings)  # no warehouse file yet
    shop = generate_shop(TINY_SPEC, settings.landing_dir)
    ingest_landing(settings, shop.last_date)
    assert is_first_build(settings)  # raw tables only

    first = build_warehouse(settings, shop.last_date)
    assert first.command[1:4] == ["build", "--threads", str(FULL_BUILD_THREADS)]
    assert not first.failures
    assert not is_first_build(settings)

    nightly = build_warehouse(settings, shop.last_date)
    assert "--threads" not in nightly.command
    assert not nightly.failures

    # a large shop's nightly build runs one model at a time too
    lines = _order_lines(settings)
    monkeypatch.setattr(dbt_module, "LARGE_SHOP_ORDER_LINES", lines - 1)
    large = build_warehouse(settings, shop.last_date)
    assert large.command[1:4] == ["build", "--threads", str(FULL_BUILD_THREADS)]
    assert not large.failures
    monkeypatch.setattr(dbt_module, "LARGE_SHOP_ORDER_LINES", lines)
    assert not dbt_module.is_large_shop(settings)

    # the training cutoffs of the feature models are a year of order lines each: one cutoff
    # per dbt invocation, one model at a time
    training = build_training_features(settings, shop.last_date)
    threads = training.command.index("--threads")
    assert training.command[threads + 1] == str(FULL_BUILD_THREADS)
    assert not training.failures
    offsets = training_cutoff_offsets(settings)
    models = [r for r in training.results if r["unique_id"].startswith("model.")]
    assert len(models) == 3 * len(offsets)  # three per-cutoff models, once per invocation
    with connect(settings, read_only=True) as con:
        for table in ("feat_customer_product", "feat_product_popularity"):
            built = {
                row[0]
                for row in con.execute(
                    f"select distinct cutoff_date from features.{table}"
                ).fetchall()
            }
            # a cutoff before the shop's first day has no rows
            expected = {shop.last_date - dt.timedelta(days=d) for d in [0, *offsets]}
            expected = {cutoff for cutoff in expected if cutoff >= TINY_SPEC.start}
            assert len(expected) >= 3
            assert built == expected, table
        before = {table: _rounded_rows(con, table) for table in PER_CUTOFF_FEATURES}

    # the nightly build drops the training cutoffs; all of them in one invocation (small
    # shops) build the same rows as one cutoff per invocation
    build_warehouse(settings, shop.last_date)
    at_once = build_training_features(settings, shop.last_date, cutoffs_per_run=None)
    assert not at_once.failures
    models = [r for r in at_once.results if r["unique_id"].startswith("model.")]
    assert len(models) == 3  # one invocation
    with connect(settings, read_only=True) as con:
        for table in PER_CUTOFF_FEATURES:
            assert _rounded_rows(con, table) == before[table], table
