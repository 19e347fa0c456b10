"""A shop unlike the demo, brought with a configuration file and no code edit: a Brazilian
marketplace selling in BRL, its business day in America/Sao_Paulo, one country, one-time
buyers. It loads and publishes; a configuration refusing its currency makes the first load
name that cause first."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pandas as pd
import pytest

from shopflow.generator import ShopSpec, generate_shop
from shopflow.ingest import ingest_landing
from shopflow.jobs.steps import NIGHTLY_STEPS
from shopflow.landing import list_partitions, write_partition
from shopflow.quality import QualityGateError
from tests.conftest import make_settings

SPEC = ShopSpec(customers=300, products=40, days=120, start=dt.date(2025, 1, 1), seed=21)
CONFIG = '[shop]\ncurrencies = ["BRL"]\ntimezone = "America/Sao_Paulo"\n'


def _as_marketplace(landing) -> None:
    """Rewrite the generated shop as the marketplace sends it: BRL, one country, every order
    by a new customer, and ``ordered_at`` in UTC for a local (UTC-3) time of day, so that the
    evening's orders fall on the next UTC date but on the partition's local date."""
    for partition in list_partitions(landing, "order_lines", SPEC.end):
        lines = pd.read_parquet(partition.path)
        local = lines["ordered_at"]
        # the generator's time of day, read as Sao Paulo local time, handed over in UTC
        utc = local.dt.tz_localize("America/Sao_Paulo").dt.tz_convert("UTC").dt.tz_localize(None)
        lines = lines.assign(
            ordered_at=utc,
            currency="BRL",
            country="BR",
            customer_id=("C-" + lines["order_id"]).where(lines["customer_id"].notna()),
        )
        write_partition(lines, landing, "order_lines", partition.partition_date)
    # the marketplace sends no customers entity: its one-time buyers are derived
    shutil.rmtree(landing / "customers", ignore_errors=True)


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("marketplace") / "home")
    settings.ensure_dirs()
    generate_shop(SPEC, settings.landing_dir)
    _as_marketplace(settings.landing_dir)
    return settings


def test_a_currency_the_configuration_does_not_accept_is_the_cause_named_first(
    marketplace, tmp_path
):
    home = tmp_path / "home"
    shutil.copytree(marketplace.home, home)
    (home / "shopflow.toml").write_text(CONFIG.replace('["BRL"]', '["EUR", "GBP"]'))
    settings = make_settings(home)

    with pytest.raises(QualityGateError) as blocked:
        ingest_landing(settings, SPEC.end)

    first = str(blocked.value).splitlines()[:4]
    assert first[1].startswith("Cause: currency is a known currency code (rule unknown_currency): ")
    assert "(100.0 %)" in first[1] and f"in {SPEC.days} partitions, e.g. 'BRL'" in first[1]
    assert first[-1].startswith("  Setting: shop.currencies in ")


def test_with_a_configuration_file_it_loads_and_publishes(marketplace):
    (marketplace.home / "shopflow.toml").write_text(CONFIG)
    settings = make_settings(marketplace.home)
    assert settings.timezone == "America/Sao_Paulo"

    results = {name: step(settings, SPEC.end) for name, step in NIGHTLY_STEPS.items()}

    assert set(results["ingest_landing"]["rows_quarantined"].values()) == {0}
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        recommended = con.execute(
            "select count(distinct customer_id) from exports.recommendations where run_date = ?",
            [SPEC.end],
        ).fetchone()[0]
        forecast = con.execute(
            "select count(*) from exports.demand_forecast where run_date = ?", [SPEC.end]
        ).fetchone()[0]
    finally:
        con.close()
    assert recommended > 0 and forecast > 0
    warehouse = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        # the business date is the local date: equal to the partition's, not ordered_at's UTC date
        mismatched, evening = warehouse.execute(
            "select count(*) filter (where ordered_date <> partition_date), "
            "count(*) filter (where cast(ordered_at as date) <> ordered_date) "
            "from marts.fct_order_lines"
        ).fetchone()
    finally:
        warehouse.close()
    assert mismatched == 0
    assert evening > 0
