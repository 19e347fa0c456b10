"""Tests of the synthetic shop generator: contract, determinism, constraints, realism."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopflow.generator import GeneratedShop, ShopSpec, generate_shop
from shopflow.landing import COMPLETE_MARKER, CONTRACT

SMALL = ShopSpec(customers=200, products=50, days=60)
# June to January: a summer dip, the December peak, several promotions, 34 full weeks.
SEASON = ShopSpec(customers=300, products=300, days=240, start=dt.date(2025, 6, 1))


@dataclass(frozen=True)
class Shop:
    """A generated shop and its landing tables, read once per module (treat as read-only)."""

    result: GeneratedShop
    landing: Path
    lines: pd.DataFrame
    products: pd.DataFrame
    customers: pd.DataFrame


def _generate(spec: ShopSpec, landing: Path) -> Shop:
    result = generate_shop(spec, landing)
    tables = {entity: _read(landing, entity) for entity in ("order_lines", "products", "customers")}
    return Shop(result, landing, tables["order_lines"], tables["products"], tables["customers"])


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Shop:
    return _generate(SMALL, tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def season(tmp_path_factory) -> Shop:
    return _generate(SEASON, tmp_path_factory.mktemp("season"))


def _files(landing: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(landing)): p.read_bytes()
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


def _read(landing: Path, entity: str) -> pd.DataFrame:
    frames = []
    for folder in sorted((landing / entity).iterdir()):
        frame = pd.read_parquet(folder / "part-0.parquet")
        frame["partition"] = dt.date.fromisoformat(folder.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _sales(lines: pd.DataFrame) -> pd.DataFrame:
    return lines[lines["quantity"] > 0]


def _daily_orders(lines: pd.DataFrame, spec: ShopSpec) -> pd.Series:
    sales = _sales(lines)
    per_day = sales.groupby(sales["ordered_at"].dt.normalize())["order_id"].nunique()
    days = pd.date_range(spec.start, spec.end, freq="D")
    return per_day.reindex(days, fill_value=0)


# -- spec and summary --------------------------------------------------------------------------


def test_spec_end_is_the_last_business_date():
    assert SMALL.end == dt.date(2025, 3, 1)
    assert ShopSpec(days=1).end == ShopSpec().start


@pytest.mark.parametrize("field", ["customers", "products", "days"])
def test_spec_rejects_empty_shops(field):
    with pytest.raises(ValueError, match=field):
        ShopSpec(**{field: 0})


def test_summary_matches_the_files(small):
    result, lines = small.result, small.lines
    partitions = [p for p in small.landing.glob("*/*") if p.is_dir()]
    assert result.order_lines == len(lines)
    assert result.orders == lines["order_id"].nunique()
    assert result.return_lines == int((lines["quantity"] < 0).sum())
    assert result.return_orders == lines.loc[lines["quantity"] < 0, "order_id"].nunique()
    assert result.partitions_written == len(partitions)
    assert (result.customers, result.products) == (SMALL.customers, SMALL.products)
    assert (result.first_date, result.last_date) == (SMALL.start, SMALL.end)


# -- determinism -------------------------------------------------------------------------------


def test_same_spec_writes_identical_bytes(small, tmp_path):
    landing = small.landing
    generate_shop(SMALL, tmp_path)
    first, second = _files(landing), _files(tmp_path)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_another_seed_gives_another_shop(small, tmp_path):
    landing = small.landing
    generate_shop(ShopSpec(customers=200, products=50, days=60, seed=7), tmp_path)
    first, second = _files(landing), _files(tmp_path)
    days = [name for name in first if name.startswith("order_lines/") and name.endswith(".parquet")]
    differing = [name for name in days if first[name] != second.get(name)]
    assert len(differing) == len(days)


# -- landing contract --------------------------------------------------------------------------


def _matches(logical: str, arrow_type: pa.DataType) -> bool:
    if logical == "VARCHAR":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if logical == "INTEGER":
        return pa.types.is_integer(arrow_type)
    if logical == "TIMESTAMP":
        return pa.types.is_timestamp(arrow_type) and arrow_type.tz is None
    if logical.startswith("DECIMAL"):
        return pa.types.is_floating(arrow_type)
    raise AssertionError(f"unknown logical type {logical}")


@pytest.mark.parametrize("entity", ["order_lines", "products", "customers"])
def test_columns_and_types_follow_the_contract(small, entity):
    landing = small.landing
    files = sorted((landing / entity).glob("*/*.parquet"))
    assert files
    for file in files:
        schema = pq.read_schema(file)
        assert schema.names == list(CONTRACT[entity])
        wrong = [
            name
            for name, logical in CONTRACT[entity].items()
            if not _matches(logical, schema.field(name).type)
        ]
        assert wrong == [], f"{file}: {wrong}"


def test_one_order_lines_partition_per_day_and_nothing_outside(small):
    landing = small.landing
    folders = sorted(p.name for p in (landing / "order_lines").iterdir())
    expected = [(SMALL.start + dt.timedelta(days=d)).isoformat() for d in range(SMALL.days)]
    assert folders == expected
    for folder in (landing / "order_lines").iterdir():
        # one data file, and the marker that says the partition is complete, written last
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["part-0.parquet", COMPLETE_MARKER]
        )
    lines = small.lines
    assert (lines["ordered_at"].dt.date == lines["partition"]).all()


def test_products_and_customers_land_on_their_start_dates(small):
    products = small.products
    customers = small.customers
    assert len(products) == products["product_id"].nunique() == SMALL.products
    assert len(customers) == customers["customer_id"].nunique() == SMALL.customers
    assert (products["first_available_at"].dt.date == products["partition"]).all()
    assert (customers["created_at"].dt.date == customers["partition"]).all()
    for frame in (products, customers):
        assert frame["partition"].min() == SMALL.start
        assert frame["partition"].max() <= SMALL.end
    at_start = (products["partition"] == SMALL.start).mean()
    assert 0.45 <= at_start <= 0.8
    assert products["partition"].nunique() > 5  # launches spread over the period
    assert customers["partition"].nunique() > 20  # sign-ups spread over the period


def test_values_look_like_a_shop(small):
    lines = small.lines
    products = small.products
    customers = small.customers
    assert lines["order_id"].str.fullmatch(r"[OR]\d{8}").all()
    assert lines["product_id"].str.fullmatch(r"P\d{5}").all()
    assert lines["customer_id"].dropna().str.fullmatch(r"C\d{6}").all()
    assert (lines["currency"] == "EUR").all()
    assert (lines["quantity"] != 0).all()
    assert (lines["unit_price"] > 0).all()
    assert np.allclose(lines["unit_price"], lines["unit_price"].round(2), rtol=0, atol=1e-9)
    assert set(lines["country"]) <= set(customers["country"])
    assert 6 <= customers["country"].nunique() <= 8
    assert products["category"].nunique() == 12
    assert products["name"].is_unique
    assert ((products["list_price"] * 100).round() % 100 == 99).all()  # shelf prices end in .99
    assert products["name"].str.fullmatch(r"[A-Z][\w-]*( [\w-]+){2,}").all()
    # Line numbers run 1..n inside every order.
    numbers = lines.groupby("order_id")["line_number"].agg(["min", "max", "count", "nunique"])
    assert (numbers["min"] == 1).all()
    assert (numbers["max"] == numbers["count"]).all()
    assert (numbers["nunique"] == numbers["count"]).all()
    # Sale orders never repeat a product on two lines.
    assert not _sales(lines).duplicated(["order_id", "product_id"]).any()


# -- causality ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shop_name", ["small", "season"])
def test_nobody_orders_before_signing_up_and_nothing_sells_before_launch(shop_name, request):
    shop = request.getfixturevalue(shop_name)
    lines = shop.lines
    products = shop.products
    customers = shop.customers
    with_product = lines.merge(products, on="product_id", how="left", validate="many_to_one")
    assert with_product["first_available_at"].notna().all()
    assert (with_product["ordered_at"] >= with_product["first_available_at"]).all()
    registered = lines[lines["customer_id"].notna()]
    with_customer = registered.merge(customers, on="customer_id", how="left")
    assert with_customer["created_at"].notna().all()
    assert (with_customer["ordered_at"] >= with_customer["created_at"]).all()
    # Customers order from the country they live in.
    assert (with_customer["country_x"] == with_customer["country_y"]).all()


def test_returns_refer_to_earlier_purchases(season):
    lines = season.lines
    returns = lines[lines["quantity"] < 0].reset_index(names="return_row")
    sales = _sales(lines)
    assert (returns["order_id"].str[0] == "R").all()
    assert (sales["order_id"].str[0] == "O").all()
    assert 0.015 <= len(returns) / len(sales) <= 0.035

    key = ["customer_key", "product_id", "unit_price"]
    returns = returns.assign(customer_key=returns["customer_id"].fillna("<guest>"))
    sales = sales.assign(customer_key=sales["customer_id"].fillna("<guest>"))
    pairs = returns.merge(sales, on=key, suffixes=("", "_sale"))
    delay = (pairs["ordered_at"].dt.normalize() - pairs["ordered_at_sale"].dt.normalize()).dt.days
    fits = delay.between(1, 14) & (-pairs["quantity"] <= pairs["quantity_sale"])
    explained = pairs.loc[fits, "return_row"].unique()
    assert sorted(explained) == sorted(returns["return_row"])


def test_guest_orders_exist(season):
    sales = _sales(season.lines)
    guest_share = sales.groupby("order_id")["customer_id"].first().isna().mean()
    assert 0.05 <= guest_share <= 0.11


# -- signal for the forecaster -----------------------------------------------------------------


def test_weekly_seasonality(season):
    daily = _daily_orders(season.lines, SEASON)
    by_weekday = daily.groupby(daily.index.day_of_week).mean()
    assert by_weekday.idxmin() == 5  # Saturday is the quietest day
    assert by_weekday[5] < 0.85 * by_weekday[0]
    assert by_weekday[6] > by_weekday[5] * 1.2  # Sunday evening shopping


def test_yearly_seasonality_peaks_in_december(season):
    daily = _daily_orders(season.lines, SEASON)
    by_month = daily.groupby(daily.index.month).mean()
    assert by_month.idxmax() == 12
    assert by_month[12] > 1.3 * by_month[7]
    assert by_month[[6, 7, 8]].mean() < by_month[10]  # summer dip


def test_promotions_cut_prices_and_lift_demand(season):
    result, lines = season.result, season.lines
    products = season.products[["product_id", "category"]]
    sales = _sales(lines).merge(products, on="product_id")
    sales["day"] = sales["ordered_at"].dt.date
    assert 3 <= len(result.promotions) <= 4
    during_lines = before_lines = during_days = before_days = 0
    for promo in result.promotions:
        assert 3 <= (promo.last_day - promo.first_day).days + 1 <= 7
        assert 0.2 <= promo.discount <= 0.3
        category = sales[sales["category"] == promo.category]
        window = category["day"].between(promo.first_day, promo.last_day)
        before_start = max(SEASON.start, promo.first_day - dt.timedelta(days=14))
        before = category["day"].between(before_start, promo.first_day - dt.timedelta(days=1))
        prices = pd.DataFrame(
            {
                "during": category[window].groupby("product_id")["unit_price"].median(),
                "before": category[before].groupby("product_id")["unit_price"].median(),
            }
        ).dropna()
        assert len(prices) > 0
        ratio = (prices["during"] / prices["before"]).median()
        assert abs(ratio - (1 - promo.discount)) < 0.02
        during_lines += int(window.sum())
        before_lines += int(before.sum())
        during_days += (promo.last_day - promo.first_day).days + 1
        before_days += (promo.first_day - before_start).days
    assert during_lines / during_days > 1.5 * before_lines / before_days


# -- signal for the recommender ----------------------------------------------------------------


def _top_k(counts: pd.DataFrame, by: str, k: int) -> pd.DataFrame:
    """The k rows with the largest ``n`` per ``by`` value, ties broken by product id."""
    ordered = counts.sort_values([by, "n", "product_id"], ascending=[True, False, True])
    return ordered.groupby(by).head(k)


def _recall(recommended: pd.DataFrame, bought: pd.Series, k: int) -> float:
    proposals = recommended.groupby("customer_id")["product_id"].agg(set)
    hits = [
        len(proposals.get(customer, set()) & products) / min(k, len(products))
        for customer, products in bought.items()
    ]
    return float(np.mean(hits))


def test_customers_repurchase_their_favourites(season):
    products = season.products[["product_id", "category"]]
    sales = _sales(season.lines).dropna(subset=["customer_id"])
    sales = sales.merge(products, on="product_id")
    days_per_pair = sales.groupby(["customer_id", "product_id"])["ordered_at"].agg(
        lambda t: t.dt.date.nunique()
    )
    assert (days_per_pair >= 2).mean() > 0.2

    # Favourites are personal: a customer's own most bought products predict the next 28 days
    # better than the most popular products of the customer's main category.
    cutoff = pd.Timestamp(SEASON.start + dt.timedelta(days=180))
    train = sales[sales["ordered_at"] < cutoff]
    test = sales[sales["ordered_at"].between(cutoff, cutoff + pd.Timedelta(days=28))]
    bought = test[test["customer_id"].isin(train["customer_id"])]
    bought = bought.groupby("customer_id")["product_id"].agg(set)
    k = 5
    own = train.groupby(["customer_id", "product_id"]).size().rename("n").reset_index()
    repurchase = _top_k(own, "customer_id", k)
    per_category = train.groupby(["category", "product_id"]).size().rename("n").reset_index()
    main_category = (
        train.groupby(["customer_id", "category"]).size().rename("n").reset_index()
        .sort_values(["customer_id", "n", "category"], ascending=[True, False, True])
        .groupby("customer_id").head(1)[["customer_id", "category"]]
    )  # fmt: skip
    popular = main_category.merge(_top_k(per_category, "category", k), on="category")
    assert len(bought) >= 100
    assert _recall(repurchase, bought, k) > 1.1 * _recall(popular, bought, k)


def test_customers_stick_to_a_few_categories(season):
    products = season.products[["product_id", "category"]]
    sales = _sales(season.lines).dropna(subset=["customer_id"])
    sales = sales.merge(products, on="product_id")
    counts = sales.groupby(["customer_id", "category"]).size()
    regulars = counts.groupby(level=0).sum()
    regulars = regulars[regulars >= 20].index
    top3_share = (
        counts.loc[regulars].groupby(level=0).apply(lambda c: c.nlargest(3).sum() / c.sum())
    )
    assert len(regulars) >= 20
    assert top3_share.mean() > 0.8  # with 12 categories, uniform buying would give ~0.4


def test_popularity_is_skewed_and_activity_heavy_tailed(season):
    sales = _sales(season.lines)
    per_product = sales["product_id"].value_counts()
    top_fifth = per_product.iloc[: len(per_product) // 5].sum() / per_product.sum()
    assert top_fifth > 0.45
    per_customer = sales.dropna(subset=["customer_id"]).groupby("customer_id")["order_id"].nunique()
    assert per_customer.max() > 8 * per_customer.median()


def test_orders_have_several_lines_and_sometimes_bulk(season):
    sales = _sales(season.lines)
    lines_per_order = sales.groupby("order_id").size()
    assert lines_per_order.max() <= 10
    assert 1.5 <= lines_per_order.mean() <= 3.5
    assert (lines_per_order == 1).mean() < 0.6
    small_quantity = sales["quantity"].between(1, 7).mean()  # 7: promotion stock-up
    assert small_quantity > 0.85
    assert sales["quantity"].between(12, 49).any()
