"""Online Retail II adapter: every rule on a small hand-made file, plus the real file."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from shopflow.adapters import (
    ADAPTERS,
    AdaptedShop,
    SourceAdapter,
    get_adapter,
    load_source,
)
from shopflow.adapters.online_retail_ii import (
    NON_PRODUCT_CODES,
    OnlineRetailII,
    is_non_product_code,
    non_product_code_sql,
)
from shopflow.landing import COMPLETE_MARKER, CONTRACT
from tests.conftest import REPO_ROOT, SHARED_DATA

REAL_FILE = SHARED_DATA / "online_retail_ii_2009_2010.parquet"
SOURCE = "online-retail-ii"
COLUMNS = [
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
]
UK = "United Kingdom"
NA = float("nan")
WINTER = "2009-12-01 07:45:00"  # GMT: UTC = local
SUMMER = "2010-07-01 00:30:00"  # BST: UTC = local - 1h, the previous UTC day

# One row per rule; comments give the expected outcome.
RAW_ROWS = [
    ("489434", "85048", "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12, WINTER, 6.95, 13085.0, UK),
    ("489434", "79323P", "PINK CHERRY LIGHTS", 12, WINTER, 6.75, 13085.0, UK),
    ("489434", "79323P", "PINK CHERRY LIGHTS", 12, WINTER, 6.75, 13085.0, UK),  # exact dup
    ("489434", "79323P", "PINK CHERRY LIGHTS", 6, WINTER, 6.75, 13085.0, UK),  # not a dup
    ("489434", "POST", "POSTAGE", 1, WINTER, 18.0, 13085.0, UK),  # non-product, kept
    ("C489449", "79323P", "PINK CHERRY LIGHTS", -12, "2009-12-01 10:33:00", 6.75, 13085.0, UK),
    ("A506401", "B", "Adjust bad debt", 1, "2010-04-29 13:36:00", -53594.36, NA, UK),  # dropped
    ("510000", "85123a", "WHITE HANGING HEART T-LIGHT HOLDER", 6, SUMMER, 2.55, NA, UK),  # guest
    ("510000", "47503J ", "  WOODLAND BOX ", 2, SUMMER, 4.25, NA, UK),
    ("510001", "85123A", "CREAM HANGING HEART T-LIGHT HOLDER", 3, "2010-07-02 12:00:00", 2.95,
     12346.0, "France"),  # renamed: latest description
    ("510002", "85123A", "nan", 1, "2010-07-03 09:00:00", 2.55, 12346.0, "Germany"),
    ("510003", "21232", "damaged", -5, "2010-07-03 10:00:00", 0.0, NA, UK),  # zero price
    ("510004", "21232", "STRAWBERRY TRINKET BOX", 0, "2010-07-03 11:00:00", 1.25, 12346.0,
     "France"),  # zero quantity
    ("C496350", "M", "Manual", 1, "2010-02-01 08:24:00", 373.57, NA, UK),  # sign fixed to -1
]  # fmt: skip

T = pd.Timestamp
EXPECTED_ORDER_LINES = [
    ("489434", 1, T("2009-12-01 07:45"), "13085", "85048", 12, 6.95, "GBP", UK),
    ("489434", 2, T("2009-12-01 07:45"), "13085", "79323P", 12, 6.75, "GBP", UK),
    ("489434", 3, T("2009-12-01 07:45"), "13085", "79323P", 6, 6.75, "GBP", UK),
    ("489434", 4, T("2009-12-01 07:45"), "13085", "POST", 1, 18.0, "GBP", UK),
    ("C489449", 1, T("2009-12-01 10:33"), "13085", "79323P", -12, 6.75, "GBP", UK),
    ("510000", 1, T("2010-06-30 23:30"), None, "85123A", 6, 2.55, "GBP", UK),
    ("510000", 2, T("2010-06-30 23:30"), None, "47503J", 2, 4.25, "GBP", UK),
    ("510001", 1, T("2010-07-02 11:00"), "12346", "85123A", 3, 2.95, "GBP", "France"),
    ("510002", 1, T("2010-07-03 08:00"), "12346", "85123A", 1, 2.55, "GBP", "Germany"),
    ("C496350", 1, T("2010-02-01 08:24"), None, "M", -1, 373.57, "GBP", UK),
]
EXPECTED_PRODUCTS = [
    ("47503J", "WOODLAND BOX", None, 4.25, T("2010-06-30 23:30")),
    ("79323P", "PINK CHERRY LIGHTS", None, 6.75, T("2009-12-01 07:45")),
    ("85048", "15CM CHRISTMAS GLASS BALL 20 LIGHTS", None, 6.95, T("2009-12-01 07:45")),
    ("85123A", "CREAM HANGING HEART T-LIGHT HOLDER", None, 2.55, T("2010-06-30 23:30")),
    ("M", "Manual", None, 373.57, T("2010-02-01 08:24")),
    ("POST", "POSTAGE", None, 18.0, T("2009-12-01 07:45")),
]
EXPECTED_CUSTOMERS = [
    ("12346", T("2010-07-02 11:00"), "Germany"),  # France 1, Germany 1: most recent wins
    ("13085", T("2009-12-01 07:45"), UK),
]
EXPECTED_REPORT = {
    "rows_read": 14,
    "dropped_incomplete": 0,
    "dropped_adjustment_invoices": 1,
    "dropped_exact_duplicates": 1,
    "dropped_zero_quantity": 1,
    "dropped_zero_price": 1,
    "dropped_negative_price": 0,
    "cancellation_lines": 2,
    "cancellation_sign_fixed": 1,
    "non_product_lines": 2,
    "guest_lines": 3,
    "local_times_ambiguous": 0,
    "local_times_nonexistent": 0,
    "order_lines": 10,
    "products": 6,
    "customers": 2,
}


def raw_frame(rows: list[tuple] = RAW_ROWS) -> pd.DataFrame:
    """Typed like the published Parquet file."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["Quantity"] = frame["Quantity"].astype("int64")
    frame["Price"] = frame["Price"].astype("float64")
    frame["Customer ID"] = frame["Customer ID"].astype("float64")
    return frame


def write_parquet(tmp_path: Path, rows: list[tuple] = RAW_ROWS) -> Path:
    path = tmp_path / "online_retail_ii.parquet"
    raw_frame(rows).to_parquet(path, index=False)
    return path


def write_csv(tmp_path: Path, rows: list[tuple] = RAW_ROWS, date_format: str | None = None) -> Path:
    """As the published CSV: Customer ID '13085.0' or empty, ISO dates unless told."""
    frame = raw_frame(rows)
    if date_format:
        frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime(date_format)
    path = tmp_path / "online_retail_ii.csv"
    frame.to_csv(path, index=False)
    return path


def records(frame: pd.DataFrame) -> list[tuple]:
    """Rows as tuples, missing values as None."""
    return [
        tuple(None if pd.isna(v) else v for v in row)
        for row in frame.astype(object).itertuples(index=False)
    ]


# -- registry and interface ------------------------------------------------------------------


def test_registry_and_protocol() -> None:
    adapter = get_adapter(SOURCE)
    assert isinstance(adapter, OnlineRetailII)
    assert isinstance(adapter, SourceAdapter)
    assert ADAPTERS[SOURCE] is adapter
    assert adapter.description


def test_unknown_adapter_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown source adapter 'shopify'.*online-retail-ii"):
        get_adapter("shopify")


def test_adapted_shop_rejects_non_contract_columns() -> None:
    with pytest.raises(ValueError, match="landing contract"):
        AdaptedShop(order_lines=pd.DataFrame({"order_id": ["1"]}), products=None, customers=None)


def test_package_import_does_not_import_pandas() -> None:
    # A subprocess because only a fresh interpreter shows what `import shopflow.adapters`
    # pulls in: this process has pandas imported already (by this module), and an extension
    # module cannot be unloaded to check in-process.
    code = "import sys, shopflow.adapters; assert 'pandas' not in sys.modules, 'pandas imported'"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=env)


# -- the rules ------------------------------------------------------------------------------


@pytest.fixture()
def shop(tmp_path: Path) -> AdaptedShop:
    return get_adapter(SOURCE).read(write_parquet(tmp_path))


def test_order_lines_exact(shop: AdaptedShop) -> None:
    assert list(shop.order_lines.columns) == list(CONTRACT["order_lines"])
    assert records(shop.order_lines) == EXPECTED_ORDER_LINES


def test_order_line_types(shop: AdaptedShop) -> None:
    lines = shop.order_lines
    assert str(lines["ordered_at"].dtype) == "datetime64[us]"  # naive UTC
    assert str(lines["line_number"].dtype) == "int32"
    assert str(lines["quantity"].dtype) == "int32"
    assert lines["customer_id"].dtype == "str"
    assert not lines.duplicated(["order_id", "line_number"]).any()


def test_report_counts_every_rule(shop: AdaptedShop) -> None:
    assert shop.report == EXPECTED_REPORT


def test_products_latest_description_median_price_first_line(shop: AdaptedShop) -> None:
    assert list(shop.products.columns) == list(CONTRACT["products"])
    assert records(shop.products) == EXPECTED_PRODUCTS


def test_customers_first_order_and_most_frequent_country(shop: AdaptedShop) -> None:
    assert list(shop.customers.columns) == list(CONTRACT["customers"])
    assert records(shop.customers) == EXPECTED_CUSTOMERS


def test_most_frequent_country_beats_most_recent(tmp_path: Path) -> None:
    rows = [
        ("1", "22423", "REGENCY CAKESTAND", 1, "2010-01-04 10:00:00", 12.75, 17850.0, "France"),
        ("2", "22423", "REGENCY CAKESTAND", 1, "2010-01-05 10:00:00", 12.75, 17850.0, "France"),
        ("3", "22423", "REGENCY CAKESTAND", 1, "2010-01-06 10:00:00", 12.75, 17850.0, "EIRE"),
    ]
    shop = get_adapter(SOURCE).read(write_parquet(tmp_path, rows))
    assert records(shop.customers) == [("17850", T("2010-01-04 10:00"), "France")]


def test_product_without_any_description_has_no_name(tmp_path: Path) -> None:
    rows = [("1", "22423", "nan", 1, "2010-01-04 10:00:00", 12.75, NA, UK)]
    shop = get_adapter(SOURCE).read(write_parquet(tmp_path, rows))
    assert records(shop.products) == [("22423", None, None, 12.75, T("2010-01-04 10:00"))]


@pytest.mark.parametrize("date_format", [None, "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M"])
def test_csv_gives_the_same_result_as_parquet(
    tmp_path: Path, shop: AdaptedShop, date_format: str | None
) -> None:
    from_csv = get_adapter(SOURCE).read(write_csv(tmp_path, date_format=date_format))
    pd.testing.assert_frame_equal(from_csv.order_lines, shop.order_lines)
    pd.testing.assert_frame_equal(from_csv.products, shop.products)
    pd.testing.assert_frame_equal(from_csv.customers, shop.customers)
    assert from_csv.report == shop.report


def test_csv_read_as_text_keeps_invoice_and_customer_ids(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    text = path.read_text()
    assert "C489449" in text and "13085.0" in text  # the published shape
    lines = get_adapter(SOURCE).read(path).order_lines
    assert "C489449" in set(lines["order_id"])
    assert set(lines["customer_id"].dropna()) == {"13085", "12346"}


@pytest.mark.parametrize("missing", ["Customer ID", "InvoiceDate"])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_missing_column_names_file_and_column(tmp_path: Path, missing: str, kind: str) -> None:
    path = tmp_path / f"export.{kind}"
    frame = raw_frame().drop(columns=[missing])
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    with pytest.raises(ValueError, match=rf"export\.{kind}.*missing column\(s\) '{missing}'"):
        get_adapter(SOURCE).read(path)


def test_unparseable_values_are_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    path.write_text(path.read_text().replace(",12,", ",twelve,", 1))
    with pytest.raises(ValueError, match=r"online_retail_ii\.csv.*'Quantity'.*twelve"):
        get_adapter(SOURCE).read(path)


def test_incomplete_rows_are_dropped(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    path.write_text(path.read_text() + ",,,,,,,\n510099,22423,,1,,12.75,,United Kingdom\n")
    shop = get_adapter(SOURCE).read(path)
    assert shop.report["rows_read"] == 16
    assert shop.report["dropped_incomplete"] == 2
    assert records(shop.order_lines) == EXPECTED_ORDER_LINES


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"export\.xlsx.*unsupported"):
        get_adapter(SOURCE).read(path)


def test_uk_local_time_to_utc_around_clock_changes(tmp_path: Path) -> None:
    stamps = {
        "2010-01-15 12:00:00": "2010-01-15 12:00",  # GMT
        "2010-03-28 00:59:00": "2010-03-28 00:59",  # last GMT minute
        "2010-03-28 01:30:00": "2010-03-28 01:30",  # skipped hour: read as GMT
        "2010-03-28 02:00:00": "2010-03-28 01:00",  # BST
        "2010-07-01 00:30:00": "2010-06-30 23:30",  # BST, previous UTC day
        "2010-10-31 00:59:00": "2010-10-30 23:59",  # BST
        "2010-10-31 01:30:00": "2010-10-31 00:30",  # repeated hour: first one (BST)
        "2010-10-31 02:00:00": "2010-10-31 02:00",  # GMT again
    }
    rows = [
        (str(500000 + i), "22423", "REGENCY CAKESTAND", 1, local, 12.75, NA, UK)
        for i, local in enumerate(stamps)
    ]
    shop = get_adapter(SOURCE).read(write_parquet(tmp_path, rows))
    assert shop.order_lines["ordered_at"].tolist() == [T(v) for v in stamps.values()]
    assert shop.report["local_times_ambiguous"] == 1
    assert shop.report["local_times_nonexistent"] == 1


# -- non-product codes ---------------------------------------------------------------------

REAL_NON_PRODUCT_CODES = [
    "POST", "DOT", "M", "m", "D", "C2", "C3", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK",
    "ADJUST", "ADJUST2", "TEST001", "TEST002", "PADS", "GIFT", "gift_0001_10", "gift_0001_80",
    " POST ", "",
]  # fmt: skip
REAL_PRODUCT_CODES = [
    "85123A", "85123a", "22423", "84997B", "79323LP", "15056BL", "72024HC", "47503J ",
    "DCGS0076", "DCGS0066N", "DCGSSGIRL", "DCGSLBOY", "SP1002", "10002",
]  # fmt: skip


@pytest.mark.parametrize("code", REAL_NON_PRODUCT_CODES)
def test_non_product_codes(code: str) -> None:
    assert is_non_product_code(code)


@pytest.mark.parametrize("code", REAL_PRODUCT_CODES)
def test_product_codes(code: str) -> None:
    assert not is_non_product_code(code)


def test_non_product_code_list_is_covered_by_the_patterns() -> None:
    assert [c for c in sorted(NON_PRODUCT_CODES) if not is_non_product_code(c)] == []
    assert is_non_product_code(None)
    assert is_non_product_code("gift_0002_25")  # any voucher, not only the listed ones
    assert is_non_product_code("C4")  # any carriage band


def test_non_product_code_sql_mirrors_python() -> None:
    codes = REAL_NON_PRODUCT_CODES + REAL_PRODUCT_CODES + [None]
    con = duckdb.connect()
    con.register("codes", pd.DataFrame({"code": pd.Series(codes, dtype=object)}))
    flags = con.execute(f"select {non_product_code_sql('code')} from codes").fetchall()
    assert [flag for (flag,) in flags] == [is_non_product_code(c) for c in codes]


# -- load_source -----------------------------------------------------------------------------


def landing_files(landing: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(landing)): p.read_bytes()
        for p in sorted(landing.rglob("*"))
        if p.is_file() and p.name != COMPLETE_MARKER
    }


def test_load_source_writes_one_partition_per_utc_date(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    result = load_source(SOURCE, write_parquet(tmp_path), landing)

    assert result.source == SOURCE
    assert result.dates_written == 5
    assert (result.order_lines, result.products, result.customers) == (10, 6, 2)
    assert (result.first_date, result.last_date) == (dt.date(2009, 12, 1), dt.date(2010, 7, 3))
    assert result.report == EXPECTED_REPORT
    # every partition written is marked complete
    assert [d for d in landing.glob("*/*") if not (d / COMPLETE_MARKER).is_file()] == []
    assert sorted(landing_files(landing)) == [
        "customers/2009-12-01/part-0.parquet",
        "customers/2010-07-02/part-0.parquet",
        "order_lines/2009-12-01/part-0.parquet",
        "order_lines/2010-02-01/part-0.parquet",
        "order_lines/2010-06-30/part-0.parquet",  # the BST order placed 2010-07-01 00:30 local
        "order_lines/2010-07-02/part-0.parquet",
        "order_lines/2010-07-03/part-0.parquet",
        "products/2009-12-01/part-0.parquet",
        "products/2010-02-01/part-0.parquet",
        "products/2010-06-30/part-0.parquet",
    ]
    lines = pd.read_parquet(landing / "order_lines/2010-06-30/part-0.parquet")
    assert records(lines) == EXPECTED_ORDER_LINES[5:7]
    products = pd.read_parquet(landing / "products/2010-06-30/part-0.parquet")
    assert products["product_id"].tolist() == ["47503J", "85123A"]


def test_load_source_partitions_by_the_shops_local_date(tmp_path: Path) -> None:
    """A shop whose time zone is London files the order placed 2010-07-01 00:30 BST under
    its local date, not under the UTC date 2010-06-30."""
    landing = tmp_path / "landing"
    result = load_source(SOURCE, write_parquet(tmp_path), landing, timezone="Europe/London")

    assert sorted(p.name for p in (landing / "order_lines").iterdir()) == [
        "2009-12-01",
        "2010-02-01",
        "2010-07-01",
        "2010-07-02",
        "2010-07-03",
    ]
    assert (result.first_date, result.last_date) == (dt.date(2009, 12, 1), dt.date(2010, 7, 3))
    lines = pd.read_parquet(landing / "order_lines/2010-07-01/part-0.parquet")
    assert records(lines) == EXPECTED_ORDER_LINES[5:7]  # ordered_at stays UTC
    products = pd.read_parquet(landing / "products/2010-07-01/part-0.parquet")
    assert products["product_id"].tolist() == ["47503J", "85123A"]


def test_load_source_is_idempotent(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    source = write_parquet(tmp_path)
    first = load_source(SOURCE, source, landing)
    before = landing_files(landing)
    second = load_source(SOURCE, source, landing)
    assert second == first
    assert landing_files(landing) == before  # same files, same bytes


def test_load_source_replaces_dates_it_covers_and_keeps_others(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    load_source(SOURCE, write_parquet(tmp_path), landing)
    later = tmp_path / "later"
    later.mkdir()
    rows = [r for r in RAW_ROWS if str(r[4]).startswith("2010-07-03")]  # one date only
    rows = [(*r[:3], r[3] * 2, *r[4:]) for r in rows]
    load_source(SOURCE, write_parquet(later, rows), landing)
    replaced = pd.read_parquet(landing / "order_lines/2010-07-03/part-0.parquet")
    assert replaced["quantity"].tolist() == [2]
    kept = pd.read_parquet(landing / "order_lines/2009-12-01/part-0.parquet")
    assert len(kept) == 5


# -- the real file ---------------------------------------------------------------------------

EXPECTED_SQL = """
with raw as (select * from read_parquet($path)),
not_adjustment as (select * from raw where not starts_with(upper(trim(Invoice)), 'A')),
deduplicated as (select distinct * from not_adjustment),
kept as (select * from deduplicated where Quantity <> 0 and Price > 0),
utc as (
    select *, timezone('UTC', timezone('Europe/London', InvoiceDate)) as ordered_at from kept
)
select
    (select count(*) from raw) as rows_read,
    (select count(*) from raw) - (select count(*) from not_adjustment)
        as dropped_adjustment_invoices,
    (select count(*) from not_adjustment) - (select count(*) from deduplicated)
        as dropped_exact_duplicates,
    (select count(*) from deduplicated where Quantity = 0) as dropped_zero_quantity,
    (select count(*) from deduplicated where Quantity <> 0 and Price = 0) as dropped_zero_price,
    count(*) as order_lines,
    count(*) filter (where starts_with(Invoice, 'C')) as cancellation_lines,
    count(*) filter (where starts_with(Invoice, 'C') and Quantity > 0) as cancellation_sign_fixed,
    count(*) filter (where "Customer ID" is null) as guest_lines,
    count(distinct upper(trim(StockCode))) as products,
    count(distinct "Customer ID") as customers,
    count(distinct Invoice) as orders,
    count(distinct ordered_at::date) as dates,
    min(ordered_at::date) as first_date,
    max(ordered_at::date) as last_date,
    sum(case when starts_with(Invoice, 'C') then -abs(Quantity) else Quantity end) as units,
    round(sum(Price * case when starts_with(Invoice, 'C') then -abs(Quantity) else Quantity end),
        2) as revenue
from utc
"""


@pytest.mark.realdata
def test_real_file_counts_match_duckdb(tmp_path: Path, record_property) -> None:
    if not REAL_FILE.is_file():
        pytest.skip(f"real data not present: {REAL_FILE}")
    con = duckdb.connect()
    cursor = con.execute(EXPECTED_SQL, {"path": str(REAL_FILE)})
    names = [d[0] for d in cursor.description]
    expected = dict(zip(names, cursor.fetchone(), strict=True))

    landing = tmp_path / "landing"
    started = time.perf_counter()
    result = load_source(SOURCE, REAL_FILE, landing)
    # Reported, not asserted: a wall-clock limit depends on the machine and its load.
    seconds = time.perf_counter() - started
    record_property("load_source_seconds", round(seconds, 1))

    report_keys = [
        "rows_read",
        "dropped_adjustment_invoices",
        "dropped_exact_duplicates",
        "dropped_zero_quantity",
        "dropped_zero_price",
        "order_lines",
        "cancellation_lines",
        "cancellation_sign_fixed",
        "guest_lines",
        "products",
        "customers",
    ]
    assert {k: result.report[k] for k in report_keys} == {k: expected[k] for k in report_keys}
    assert result.report["dropped_incomplete"] == 0
    assert result.report["dropped_negative_price"] == 0
    assert result.dates_written == expected["dates"]
    assert (result.first_date, result.last_date) == (expected["first_date"], expected["last_date"])
    assert (result.order_lines, result.products, result.customers) == (
        expected["order_lines"],
        expected["products"],
        expected["customers"],
    )

    # What landed, read back with DuckDB: every line in the folder of its UTC date.
    glob = str(landing / "order_lines/*/*.parquet")
    landed = con.execute(
        f"""
        select count(*), count(distinct order_id), count(distinct (order_id, line_number)),
               count(distinct regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})', 1)),
               count(*) filter (
                   where ordered_at::date::varchar
                       <> regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})', 1)),
               sum(quantity), round(sum(quantity * unit_price), 2),
               count(*) filter (where {non_product_code_sql("product_id")}),
               count(*) filter (where quantity < 0)
        from read_parquet('{glob}', filename = true)
        """
    ).fetchone()
    assert landed == (
        expected["order_lines"],
        expected["orders"],
        expected["order_lines"],  # (order_id, line_number) unique
        expected["dates"],
        0,
        expected["units"],
        expected["revenue"],
        result.report["non_product_lines"],
        expected["cancellation_lines"],
    )
    products = con.execute(
        f"select count(*), count(distinct product_id), count(name) "
        f"from read_parquet('{landing / 'products/*/*.parquet'}')"
    ).fetchone()
    assert products == (expected["products"],) * 3
    customers = con.execute(
        f"select count(*), count(distinct customer_id) "
        f"from read_parquet('{landing / 'customers/*/*.parquet'}')"
    ).fetchone()
    assert customers == (expected["customers"],) * 2
    print(f"load_source on the real file: {seconds:.1f} s, report {result.report}")
