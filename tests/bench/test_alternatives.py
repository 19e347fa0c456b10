"""The benchmark's two comparisons compute the tables of the nightly `dbt build`.

A small shop is generated, given what real shops send and the generator does not (variant
codes sharing a stem, non-product codes, products and customers missing from their entities,
attributes changed before and after the run date), ingested in two batches and built by dbt
as of the run date, with small co-occurrence limits so that they bite. Then bench/limit.sql
(the limit) and bench/pandas_marts.py (the usual alternative) run for the same date, and
every table must hold the dbt table's rows: exact for keys, integers, dates, text and flags,
floats to a relative 1e-9 (the same sums in another order).

The limit reads ingest's raw tables and is compared on every column. The pandas version reads
the landing files, which carry no ingest lineage: it is compared on every column but the
bookkeeping ones, batch_id (fct_order_lines) and source_batch_id (the incremental models'
watermark).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from bench.pandas_marts import compute_marts
from bench.stage import run_limit_sql
from shopflow.dbt import project_vars, run_dbt
from shopflow.generator import ShopSpec, generate_shop
from shopflow.ingest import ingest_landing
from shopflow.landing import write_partition
from shopflow.warehouse import connect
from tests.conftest import make_settings

SPEC = ShopSpec(customers=300, products=60, days=120, start=dt.date(2025, 1, 1), seed=3)
RUN_DATE = SPEC.end - dt.timedelta(days=10)  # later partitions exist and must be ignored
FIRST_INGEST = RUN_DATE - dt.timedelta(days=30)
# small enough to bite in a 60-product shop: top 4 neighbours, baskets of 2 to 6 products
VARS = {"cooccurrence_neighbours": 4, "cooccurrence_max_order_products": 6}

# Every table the nightly build materialises: schema and grain (a row's key).
MODELS = {
    "fct_order_lines": ("marts", ["order_id", "line_number"]),
    "fct_orders": ("marts", ["order_id"]),
    "dim_products": ("marts", ["product_id"]),
    "dim_customers": ("marts", ["customer_id"]),
    "fct_product_daily_demand": ("marts", ["product_id", "demand_date"]),
    "fct_customer_product_interactions": ("marts", ["customer_id", "product_id"]),
    "feat_product_daily": ("features", ["product_id", "demand_date"]),
    "feat_customer_product": ("features", ["cutoff_date", "customer_id", "product_id"]),
    "feat_product_popularity": ("features", ["cutoff_date", "product_id"]),
    "feat_product_cooccurrence": ("features", ["cutoff_date", "product_id", "related_product_id"]),
}
# ingest lineage, absent from the landing files
BOOKKEEPING = {"batch_id", "source_batch_id"}
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
# relative for floats; absolute 1e-9 (of a currency unit) for amounts netting out to zero
RTOL = ATOL = 1e-9
HOUR = pd.Timedelta(hours=1)

# colour/size variants sharing a stem, as Online Retail II codes do
VARIANTS = {"P00001": "20001A", "P00002": "20001B", "P00003": "20002A", "P00004": "20002b"}
# the first line of every tenth sales order: postage, a manual adjustment landed in lower
# case, and a letters-only code that is merchandise (DCGS), sent in no products partition
FIRST_LINE_CODES = {0: "POST", 3: "m", 5: "DCGSSBOY"}
MISSING_PRODUCTS = {"P00050", "P00051", "P00052"}
MISSING_CUSTOMERS = {"C000007", "C000014", "C000021"}
RENAMED_PRODUCT, MOVED_CUSTOMER = "P00010", "C000003"
# one order this many days before the run date, each by its own customer for its own product:
# either side of every window edge (7, 30 and 90 days: recency, activity, sellable, counts)
BOUNDARY_DAYS = (6, 7, 29, 30, 89, 90, 91)


def _vary_order_lines(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(product_id=frame["product_id"].replace(VARIANTS))
    number = frame["order_id"].str[1:].astype(int)
    first_sales_line = frame["order_id"].str.startswith("O") & (frame["line_number"] == 1)
    for remainder, code in FIRST_LINE_CODES.items():
        chosen = first_sales_line & (number % 10 == remainder)
        frame.loc[chosen, "product_id"] = code
    return frame


def _boundary_order(days_before: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [f"B{days_before:08d}"],
            "line_number": [1],
            "ordered_at": [pd.Timestamp(RUN_DATE - dt.timedelta(days=days_before)) + HOUR],
            "customer_id": [f"C9{days_before:05d}"],
            "product_id": [f"P9{days_before:04d}"],
            "quantity": [3],
            "unit_price": [4.99],
            "currency": ["EUR"],
            "country": ["DE"],
        }
    )


def _vary_landing(landing_dir: Path) -> None:
    """What a real shop sends and the generator does not."""
    for days_before in BOUNDARY_DAYS:
        day = RUN_DATE - dt.timedelta(days=days_before)
        order = _boundary_order(days_before)
        write_partition(order, landing_dir, "order_lines", day, file_name="part-1.parquet")
    for path in sorted((landing_dir / "order_lines").glob("*/part-0.parquet")):
        day = dt.date.fromisoformat(path.parent.name)
        write_partition(_vary_order_lines(pd.read_parquet(path)), landing_dir, "order_lines", day)
    for path in sorted((landing_dir / "products").glob("*/part-0.parquet")):
        frame = pd.read_parquet(path)
        frame = frame[~frame["product_id"].isin(MISSING_PRODUCTS)]
        frame = frame.assign(product_id=frame["product_id"].replace(VARIANTS))
        write_partition(frame, landing_dir, "products", dt.date.fromisoformat(path.parent.name))
    for path in sorted((landing_dir / "customers").glob("*/part-0.parquet")):
        frame = pd.read_parquet(path)
        frame = frame[~frame["customer_id"].isin(MISSING_CUSTOMERS)]
        write_partition(frame, landing_dir, "customers", dt.date.fromisoformat(path.parent.name))
    # later attributes: one change before the run date (seen), one after it (not seen)
    for day, name, country in (
        (RUN_DATE - dt.timedelta(days=20), "Renamed Lantern", "NL"),
        (RUN_DATE + dt.timedelta(days=3), "Future Lantern", "FR"),
    ):
        product = pd.DataFrame(
            {
                "product_id": [RENAMED_PRODUCT],
                "name": [name],
                "category": ["renamed"],
                "list_price": [12.5],
                "first_available_at": [pd.Timestamp(SPEC.start)],
            }
        )
        write_partition(product, landing_dir, "products", day, file_name="part-1.parquet")
        customer = pd.DataFrame(
            {
                "customer_id": [MOVED_CUSTOMER],
                "created_at": [pd.Timestamp(SPEC.start)],
                "country": [country],
            }
        )
        write_partition(customer, landing_dir, "customers", day, file_name="part-1.parquet")


def _column_types(con, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return dict(rows)


def _normalised(frame: pd.DataFrame, types: dict[str, str], grain: list[str]) -> pd.DataFrame:
    """``frame``'s columns as the dbt table types them (whatever the engine's dtypes), in
    grain order."""
    columns = {}
    for column, kind in types.items():
        values = frame[column].reset_index(drop=True)
        if kind in INTEGER_TYPES:
            values = values.astype("Int64")  # raises on a non-integral value
        elif kind == "DOUBLE":
            values = values.astype("float64")
        elif kind in ("DATE", "TIMESTAMP"):
            values = pd.to_datetime(values).astype("datetime64[us]")
        elif kind == "BOOLEAN":
            values = values.astype("boolean")
        else:
            values = values.astype("string")
        columns[column] = values
    return pd.DataFrame(columns).sort_values(grain, ignore_index=True)


def assert_same_table(actual: pd.DataFrame, expected: dict) -> None:
    """``actual`` holds the dbt table's rows on the dbt table's columns (minus the excluded
    ones): the same column names, rows and values."""
    types, grain = expected["types"], expected["grain"]
    assert sorted(actual.columns) == sorted(types)
    left = _normalised(actual, types, grain)
    right = _normalised(expected["rows"], types, grain)
    assert len(left) == len(right)
    for column, kind in types.items():
        if kind == "DOUBLE":
            pd.testing.assert_series_equal(
                left[column], right[column], check_exact=False, rtol=RTOL, atol=ATOL
            )
        else:
            pd.testing.assert_series_equal(left[column], right[column], check_exact=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The shop ingested in two batches and built by dbt as of RUN_DATE."""
    settings = make_settings(tmp_path_factory.mktemp("alternatives") / "home")
    settings.ensure_dirs()
    generate_shop(SPEC, settings.landing_dir)
    _vary_landing(settings.landing_dir)
    ingest_landing(settings, FIRST_INGEST)
    ingest_landing(settings, RUN_DATE)
    run_dbt(settings, ["build"], RUN_DATE, extra_vars=VARS)
    return settings


@pytest.fixture(scope="module")
def dbt_tables(built) -> dict[str, dict]:
    tables = {}
    with connect(built, read_only=True) as con:
        for model, (schema, grain) in MODELS.items():
            tables[model] = {
                "types": _column_types(con, schema, model),
                "grain": grain,
                "rows": con.execute(f"select * from {schema}.{model}").df(),
            }
    return tables


@pytest.fixture(scope="module")
def variables(built) -> dict:
    return {**project_vars(built), **VARS}


@pytest.fixture(scope="module")
def limit_tables(built, variables) -> dict[str, pd.DataFrame]:
    target = built.home / "limit.duckdb"
    run_limit_sql(built, RUN_DATE, target, variables)
    with duckdb.connect(str(target), read_only=True) as con:
        return {model: con.execute(f"select * from lim.{model}").df() for model in MODELS}


@pytest.fixture(scope="module")
def pandas_tables(built, variables) -> dict[str, pd.DataFrame]:
    out_dir = built.home / "pandas_marts"
    compute_marts(built.landing_dir, out_dir, RUN_DATE, variables)
    return {model: pd.read_parquet(out_dir / f"{model}.parquet") for model in MODELS}


def test_the_comparison_covers_every_table_the_build_materialises(built):
    with connect(built, read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema in ('marts', 'features') and table_type = 'BASE TABLE'"
        ).fetchall()
    assert sorted(name for (name,) in tables) == sorted(MODELS)


def test_the_shop_exercises_the_definitions(dbt_tables):
    """Without these the comparison could not tell a definition that drifted on them."""
    products = dbt_tables["dim_products"]["rows"].set_index("product_id")
    assert set(products.index[products["is_non_product"]]) == {"POST", "m"}
    assert not products.loc["DCGSSBOY", "is_non_product"]
    fallback = [*MISSING_PRODUCTS, "DCGSSBOY"]
    assert (products.loc[fallback, "product_name"] == products.loc[fallback].index).all()
    assert products.loc[RENAMED_PRODUCT, "product_name"] == "Renamed Lantern"
    customers = dbt_tables["dim_customers"]["rows"].set_index("customer_id")
    assert customers.loc[MOVED_CUSTOMER, "country"] == "NL"
    boundary = [f"C9{days:05d}" for days in (90, 91)]
    assert customers.loc[boundary, "is_active"].tolist() == [True, False]
    boundary = [f"P9{days:04d}" for days in (90, 91)]
    assert products.loc[boundary, "is_sellable"].tolist() == [True, False]
    assert customers["order_count"].eq(0).any()  # signed up, never ordered
    daily = dbt_tables["feat_product_daily"]["rows"]
    assert set(daily.loc[daily["family_products"] > 1, "product_family"]) == {"20001", "20002"}
    assert (daily["category"] == "unknown").any()
    pairs = dbt_tables["feat_product_cooccurrence"]["rows"]
    assert pairs.groupby("product_id").size().max() == VARS["cooccurrence_neighbours"]
    lines = dbt_tables["fct_order_lines"]["rows"]
    baskets = lines[~lines["is_return"] & ~lines["is_non_product"]]
    basket_sizes = baskets.groupby("order_id")["product_id"].nunique()
    assert (basket_sizes > VARS["cooccurrence_max_order_products"]).any()
    assert lines["batch_id"].nunique() == 2
    assert lines["ordered_date"].max() == pd.Timestamp(RUN_DATE)


@pytest.mark.parametrize("model", MODELS)
def test_the_limit_script_computes_the_dbt_table(model, limit_tables, dbt_tables):
    assert_same_table(limit_tables[model], dbt_tables[model])


@pytest.mark.parametrize("model", MODELS)
def test_pandas_computes_the_dbt_table(model, pandas_tables, dbt_tables):
    expected = dict(dbt_tables[model])
    expected["types"] = {c: t for c, t in expected["types"].items() if c not in BOOKKEEPING}
    assert_same_table(pandas_tables[model], expected)
