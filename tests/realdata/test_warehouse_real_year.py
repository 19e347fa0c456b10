"""The warehouse on the real Online Retail II year: figures computed independently from the
raw file with DuckDB must match the warehouse the nightly DAG built, to the unit.

The expectations below read the published parquet directly and apply the adapter's rules in
plain SQL (drop `A` invoices, exact duplicates, zero quantities and prices; `C` lines are
negative; UK local time -> UTC date; non-product codes by pattern), so they share no code with
the adapter or the dbt models.
"""

from __future__ import annotations

import time

import duckdb
import pytest

from shopflow.deploy.runs import run_dag
from shopflow.deploy.services import down
from shopflow.settings import load_settings
from shopflow.warehouse import connect
from tests.realdata.conftest import LAST_DATE, REAL_FILE, copy_landing

pytestmark = pytest.mark.realdata

# Postage, fees, adjustments, samples, vouchers: codes without digits (except the DCGS
# dotcom products), carriage C<n>, ADJUST<n>, TEST<n>, GIFT_<n>_<n>.
NON_PRODUCT = r"^([A-Z ]+|C[0-9]+|ADJUST[0-9]*|TEST[0-9]+|GIFT_[0-9]+_[0-9]+)$"

KEPT_LINES = """
with

deduplicated as (
    select distinct Invoice, StockCode, Description, Quantity, InvoiceDate, Price,
        "Customer ID", Country
    from read_parquet($path)
),

kept as (
    select
        Invoice as invoice,
        upper(trim(StockCode)) as code,
        case when starts_with(Invoice, 'C') then -abs(Quantity) else Quantity end as units,
        cast(round(Price, 4) as decimal(18, 4)) as price,
        cast(timezone('UTC', InvoiceDate::timestamp at time zone 'Europe/London') as date)
            as utc_date,
        case when isnan("Customer ID") then null else "Customer ID" end as customer,
        not starts_with(Invoice, 'C') as is_sale
    from deduplicated
    where not starts_with(Invoice, 'A') and Quantity <> 0 and Price > 0
),

lines as (
    select
        *,
        code = ''
            or (regexp_full_match(code, $non_product) and not starts_with(code, 'DCGS'))
            as is_non_product
    from kept
    where utc_date <= $last_date
)
"""

EXPECTED_MONTHLY_LINES = (
    KEPT_LINES
    + """
select strftime(utc_date, '%Y-%m') as month, sum(units) as net_units,
    sum(units * price) as net_amount
from lines group by 1 order by 1
"""
)

EXPECTED_MONTHLY_DEMAND = (
    KEPT_LINES
    + """
, first_sales as (
    select code, min(utc_date) as first_sale from lines
    where is_sale and not is_non_product group by code
)
select strftime(lines.utc_date, '%Y-%m') as month,
    sum(units) filter (where is_sale) as units_sold,
    -sum(units) filter (where not is_sale) as units_returned,
    sum(units) as net_units,
    round(cast(sum(units * price) as double), 2) as net_revenue
from lines join first_sales on lines.code = first_sales.code
where not lines.is_non_product and lines.utc_date >= first_sales.first_sale
group by 1 order by 1
"""
)

EXPECTED_COUNTS = (
    KEPT_LINES
    + """
, products as (
    select code, max(utc_date) filter (where is_sale) as last_sale, min(utc_date) as first_line
    from lines where not is_non_product group by code
)
select
    (select count(*) from products
     where coalesce(last_sale, first_line) >= $last_date - interval 90 day) as sellable_products,
    (select count(distinct customer) from lines) as identified_customers,
    (select count(distinct invoice) from lines) as orders,
    (select count(*) from lines) as order_lines
"""
)


@pytest.fixture(scope="module")
def expected() -> dict:
    con = duckdb.connect()
    params = {"path": str(REAL_FILE), "last_date": LAST_DATE, "non_product": NON_PRODUCT}
    try:
        cursor = con.execute(EXPECTED_COUNTS, params)
        names = [d[0] for d in cursor.description]
        counts = dict(zip(names, cursor.fetchone(), strict=True))
        return {
            "lines": con.execute(EXPECTED_MONTHLY_LINES, params).fetchall(),
            "demand": con.execute(EXPECTED_MONTHLY_DEMAND, params).fetchall(),
            "counts": counts,
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def nightly(real_landing, tmp_path_factory, record_testsuite_property):
    """shopflow_nightly through the scheduler for the year's last date, on a fresh home (its
    own Airflow services on a free port, stopped at the end)."""
    from shopflow.deploy.services import free_port_block

    landing, load, load_seconds = real_landing
    home = tmp_path_factory.mktemp("real_nightly") / "home"
    settings = load_settings(
        {"SHOPFLOW_HOME": str(home), "SHOPFLOW_AIRFLOW_PORT": str(free_port_block())}
    )
    settings.ensure_dirs()
    copy_landing(landing, settings)
    started = time.perf_counter()
    try:
        run_dag(settings, "shopflow_nightly", LAST_DATE)
    finally:
        down(settings)
    dag_seconds = time.perf_counter() - started
    assert settings.published_db_path.is_file(), (
        f"shopflow_nightly for {LAST_DATE} published nothing (no task ran?): "
        f"see {settings.airflow_home / 'runs'}"
    )
    record_testsuite_property("adapter_load_seconds", round(load_seconds, 1))
    record_testsuite_property("nightly_dag_seconds", round(dag_seconds, 1))
    print(f"real year: adapter load {load_seconds:.1f} s, shopflow_nightly {dag_seconds:.1f} s")
    return settings, load


def _query(settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_monthly_net_units_and_amounts_match_the_raw_file(nightly, expected):
    settings, _ = nightly
    actual = _query(
        settings,
        "select strftime(ordered_date, '%Y-%m'), sum(quantity), "
        "sum(quantity * cast(unit_price as decimal(18, 4))) "
        "from marts.fct_order_lines group by 1 order by 1",
    )
    assert len(actual) == 13  # 2009-12 .. 2010-12
    assert actual == expected["lines"]


def test_monthly_daily_demand_matches_the_raw_file(nightly, expected):
    settings, _ = nightly
    actual = _query(
        settings,
        "select strftime(demand_date, '%Y-%m'), sum(units_sold), sum(units_returned), "
        "sum(net_units), round(sum(net_revenue), 2) "
        "from marts.fct_product_daily_demand group by 1 order by 1",
    )
    assert actual == expected["demand"]


def test_sellable_products_customers_and_orders_match_the_raw_file(nightly, expected):
    settings, _ = nightly
    actual = _query(
        settings,
        "select (select count(*) from marts.dim_products where is_sellable), "
        "(select count(*) from marts.dim_customers), "
        "(select count(*) from marts.fct_orders), "
        "(select count(*) from marts.fct_order_lines)",
    )[0]
    counts = expected["counts"]
    assert actual == (
        counts["sellable_products"],
        counts["identified_customers"],
        counts["orders"],
        counts["order_lines"],
    )


def test_daily_demand_is_zero_filled_up_to_the_last_date(nightly):
    settings, _ = nightly
    rows, days_from_first_sales, last_day = _query(
        settings,
        "select count(*), "
        "(select sum(datediff('day', first_day, date '2010-12-09') + 1) from "
        " (select min(demand_date) as first_day from marts.fct_product_daily_demand "
        "  group by product_id)), "
        "max(demand_date) "
        "from marts.fct_product_daily_demand",
    )[0]
    assert last_day == LAST_DATE
    assert rows == days_from_first_sales
