"""A shop unlike the demo, brought with a configuration file and a mapping of its own exports,
no code edit: a Brazilian marketplace selling in BRL, its business day in America/Sao_Paulo,
one country, one-time buyers. It loads and publishes; a configuration refusing its currency
makes the first load name that cause first."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from shopflow import cli
from shopflow.generator import ShopSpec, generate_shop
from shopflow.ingest import ingest_landing
from shopflow.jobs.steps import NIGHTLY_STEPS
from shopflow.quality import QualityGateError
from tests.conftest import make_settings
from tests.shop_exports import write_exports

SPEC = ShopSpec(customers=300, products=40, days=120, start=dt.date(2025, 1, 1), seed=21)
CONFIG = '[shop]\ncurrencies = ["BRL"]\ntimezone = "America/Sao_Paulo"\n'


# The marketplace's own exports (tests.shop_exports) described for the landing contract: BRL,
# one country, every order by a new customer (guests stay guests), wall-clock times of Sao
# Paulo (UTC-3, so the evening's orders fall on the next UTC date but on the partition's local
# date), cancelled orders left out. It sends no customers: its one-time buyers are derived.
MAPPING = """\
timezone: America/Sao_Paulo
tables:
  orders: {file: orders.csv}
  items: {file: order_items.csv, delimiter: ";", decimal: ","}
  products: {file: products.parquet}
entities:
  order_lines:
    from: items
    join:
      - {table: orders, on: items.order_ref = orders.id}
    where: orders.status = 'paid'
    columns:
      order_id: orders.id
      line_number: items.pos
      ordered_at: orders.placed_at
      customer_id: "case when orders.buyer is null then null else 'C-' || orders.id end"
      product_id: items.sku
      quantity: items.qty
      unit_price: items.price
      currency: {value: BRL}
      country: {value: BR}
  products:
    from: products
    columns:
      product_id: sku
      name: title
      category: category
      list_price: price
      first_available_at: launched_at
"""


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory):
    """A home holding only shopflow.toml, loaded with `shopflow load --mapping`."""
    root = tmp_path_factory.mktemp("marketplace")
    generate_shop(SPEC, root / "generated")
    write_exports(root / "generated", root / "exports")
    (root / "exports" / "marketplace.yml").write_text(MAPPING)
    home = root / "home"
    home.mkdir()
    (home / "shopflow.toml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOPFLOW_HOME", str(home))
        assert cli.main(["load", "--mapping", str(root / "exports" / "marketplace.yml")]) == 0
    settings = make_settings(home)
    assert not (settings.landing_dir / "customers").exists()
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
