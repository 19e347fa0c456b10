"""The usual alternative: every table of the nightly build in pandas, as a team without the
platform would write it — read the landing files, compute the tables in memory, write Parquet.

The same tables as the dbt models (dbt_project/models), computed in full as of the run date:
the marts, feat_product_daily, and the per-cutoff features at the scoring cutoff (the run
date). Competent pandas: vectorised groupbys, merges and grouped rolling windows, no Python
loops over rows or products. Ingest's lineage (batch ids) does not exist in the landing
files, so the bookkeeping columns batch_id and source_batch_id are not computed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from shopflow.landing import CONTRACT

# shopflow's macro is_non_product_code: postage, fees, adjustments, samples, vouchers
NON_PRODUCT = r"([A-Z ]+|C[0-9]+|ADJUST[0-9]*|TEST[0-9]+|GIFT_[0-9]+_[0-9]+)"
DAY = pd.Timedelta(days=1)
# the landing contract's logical types as Arrow types (ingest casts DECIMAL(18,4) the same way)
ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "TIMESTAMP": pa.timestamp("us"),
    "DECIMAL(18,4)": pa.float64(),
}
PARTITION_DATE = pa.schema([("partition_date", pa.date32())])


def read_entity(landing_dir: Path, entity: str, run_date: dt.date) -> pd.DataFrame:
    """Every landing Parquet file of ``entity`` dated on or before the run date, in one Arrow
    dataset scan, with its partition_date (the folder's date)."""
    root = landing_dir / entity
    folders = sorted(root.iterdir()) if root.is_dir() else []
    files = [
        str(file)
        for folder in folders
        if folder.is_dir() and folder.name <= run_date.isoformat()
        for file in sorted(folder.glob("*.parquet"))
    ]
    columns = [(name, ARROW_TYPES[kind]) for name, kind in CONTRACT[entity].items()]
    dataset = ds.dataset(
        files,
        schema=pa.schema(columns + [("partition_date", pa.date32())]),
        format="parquet",
        partitioning=ds.DirectoryPartitioning(PARTITION_DATE),
        partition_base_dir=str(root),
    )
    return dataset.to_table().to_pandas(date_as_object=False)


def is_non_product_code(codes: pd.Series) -> pd.Series:
    """The macro is_non_product_code, per code (DuckDB's trim strips spaces only)."""
    clean = codes.str.strip(" ").str.upper()
    matched = clean.str.fullmatch(NON_PRODUCT).fillna(False).astype(bool)
    return clean.isna() | clean.eq("") | (matched & ~clean.str.startswith("DCGS").fillna(False))


def latest(frame: pd.DataFrame, key: str, order: list[str]) -> pd.DataFrame:
    """The row of each ``key`` sorting last by ``order`` (an entity's latest attributes)."""
    return frame.sort_values(order).drop_duplicates(key, keep="last").set_index(key)


def order_lines_table(landing_dir: Path, run_date: dt.date) -> pd.DataFrame:
    """fct_order_lines: every line of the partitions up to the run date, with its flags."""
    lines = read_entity(landing_dir, "order_lines", run_date)
    # the landing contract's DECIMAL(18,4), as ingest casts it
    unit_price = lines["unit_price"].astype("float64").round(4)
    codes = pd.Series(lines["product_id"].unique())
    non_product = pd.Series(is_non_product_code(codes).to_numpy(), index=codes)
    return pd.DataFrame(
        {
            "order_id": lines["order_id"],
            "line_number": lines["line_number"].astype("int32"),
            "ordered_at": lines["ordered_at"],
            "ordered_date": lines["ordered_at"].dt.normalize(),
            "customer_id": lines["customer_id"],
            "product_id": lines["product_id"],
            "quantity": lines["quantity"].astype("int32"),
            "unit_price": unit_price,
            "line_amount": lines["quantity"] * unit_price,
            "currency": lines["currency"],
            "country": lines["country"],
            "is_return": lines["quantity"] < 0,
            "is_guest": lines["customer_id"].isna(),
            "is_non_product": lines["product_id"].map(non_product).astype(bool),
            "partition_date": lines["partition_date"],
        }
    )


def orders_table(lines: pd.DataFrame) -> pd.DataFrame:
    """fct_orders: one row per order."""
    return (
        lines.groupby("order_id", sort=False)
        .agg(
            customer_id=("customer_id", "first"),
            ordered_at=("ordered_at", "min"),
            ordered_date=("ordered_date", "min"),
            country=("country", "first"),
            line_count=("line_number", "size"),
            net_units=("quantity", "sum"),
            net_amount=("line_amount", "sum"),
            is_return_order=("is_return", "all"),
        )
        .reset_index()
    )


def products_table(lines: pd.DataFrame, shop: pd.DataFrame, run_date: dt.date) -> pd.DataFrame:
    """dim_products: every product sold or sent in the products entity."""
    sales = lines[~lines["is_return"]]
    priced = sales[sales["unit_price"] > 0]
    sold = sales.groupby("product_id").agg(
        first_sold_date=("ordered_date", "min"),
        last_sold_date=("ordered_date", "max"),
        units_sold=("quantity", "sum"),
    )
    returned = -lines[lines["is_return"]].groupby("product_id")["quantity"].sum()
    prices = priced.groupby("product_id")["unit_price"].agg(["mean", "min", "max"])
    last_price = latest(priced, "product_id", ["ordered_at"])["unit_price"]
    ids = pd.Index(lines["product_id"].unique()).union(shop.index).rename("product_id")
    products = pd.DataFrame(index=ids).join(shop).join(sold)
    first_sold = products["first_sold_date"]
    out = pd.DataFrame(
        {
            "product_name": products["name"].fillna(pd.Series(ids, index=ids)),
            "category": products["category"],
            "list_price": products["list_price"].fillna(last_price),
            "first_available_at": products["first_available_at"].fillna(first_sold),
            "first_sold_date": first_sold,
            "last_sold_date": products["last_sold_date"],
            "units_sold": products["units_sold"].fillna(0).astype("int64"),
            "units_returned": returned.reindex(ids).fillna(0).astype("int64"),
            "avg_unit_price": prices["mean"].reindex(ids),
            "min_unit_price": prices["min"].reindex(ids),
            "max_unit_price": prices["max"].reindex(ids),
            "is_non_product": is_non_product_code(pd.Series(ids, index=ids)),
        },
        index=ids,
    )
    day = pd.Timestamp(run_date)
    last_seen = out["last_sold_date"].fillna(out["first_available_at"].dt.normalize())
    out["is_sellable"] = (
        ~out["is_non_product"]
        & (out["first_available_at"] <= day + DAY)
        & (last_seen >= day - 90 * DAY)
    )
    return out.reset_index()


def customers_table(orders: pd.DataFrame, shop: pd.DataFrame, run_date: dt.date) -> pd.DataFrame:
    """dim_customers: every identified customer who ordered or is in the customers entity."""
    identified = orders[orders["customer_id"].notna()]
    real = identified[~identified["is_return_order"]]
    stats = identified.groupby("customer_id").agg(
        first_order_date=("ordered_date", "min"), monetary_net=("net_amount", "sum")
    )
    real_stats = real.groupby("customer_id").agg(
        last_order_date=("ordered_date", "max"), order_count=("order_id", "size")
    )
    last_country = latest(identified, "customer_id", ["ordered_at"])["country"]
    ids = stats.index.union(shop.index).rename("customer_id")
    customers = pd.DataFrame(index=ids).join(shop).join(stats).join(real_stats)
    day = pd.Timestamp(run_date)
    last_order = customers["last_order_date"]
    return pd.DataFrame(
        {
            "country": customers["country"].fillna(last_country),
            "created_at": customers["created_at"].fillna(customers["first_order_date"]),
            "first_order_date": customers["first_order_date"],
            "last_order_date": last_order,
            "order_count": customers["order_count"].fillna(0).astype("int64"),
            "monetary_net": customers["monetary_net"].fillna(0.0),
            "recency_days": (day - last_order).dt.days.astype("Int64"),
            "is_active": (last_order >= day - 90 * DAY).astype("boolean").mask(last_order.isna()),
        },
        index=ids,
    ).reset_index()


def daily_demand_table(merch: pd.DataFrame, run_date: dt.date) -> pd.DataFrame:
    """fct_product_daily_demand: every merchandise product and day from its first sale to the
    run date, zero-filled."""
    returns = merch["is_return"]
    daily = (
        merch.assign(
            units_sold=merch["quantity"].where(~returns, 0),
            units_returned=-merch["quantity"].where(returns, 0),
            revenue=merch["line_amount"].where(~returns, 0.0),
            returned_amount=-merch["line_amount"].where(returns, 0.0),
        )
        .groupby(["product_id", "ordered_date"])[
            ["units_sold", "units_returned", "revenue", "returned_amount"]
        ]
        .sum()
    )
    sales = merch[~returns]
    daily["orders"] = sales.groupby(["product_id", "ordered_date"])["order_id"].nunique()
    first_sale = sales.groupby("product_id")["ordered_date"].min()
    spans = ((pd.Timestamp(run_date) - first_sale) // DAY + 1).to_numpy()
    starts = np.repeat(np.cumsum(spans) - spans, spans)
    offsets = np.arange(spans.sum()) - starts
    spine = pd.MultiIndex.from_arrays(
        [
            np.repeat(first_sale.index.to_numpy(), spans),
            np.repeat(first_sale.to_numpy(), spans) + offsets * np.timedelta64(1, "D"),
        ],
        names=["product_id", "demand_date"],
    )
    demand = daily.reindex(spine).fillna(0)
    for column in ("units_sold", "units_returned", "orders"):
        demand[column] = demand[column].astype("int64")
    sold = demand["units_sold"]
    return pd.DataFrame(
        {
            "units_sold": sold,
            "units_returned": demand["units_returned"],
            "net_units": sold - demand["units_returned"],
            "revenue": demand["revenue"],
            "orders": demand["orders"],
            "avg_unit_price": (demand["revenue"] / sold).where(sold > 0),
            "returned_amount": demand["returned_amount"],
            "net_revenue": demand["revenue"] - demand["returned_amount"],
        }
    ).reset_index()


def product_daily_features(
    demand: pd.DataFrame, merch: pd.DataFrame, products: pd.DataFrame
) -> pd.DataFrame:
    """feat_product_daily: backward-looking windows over each product's zero-filled days
    (``demand`` is sorted by product and day, one row per day: windows of rows are days)."""
    attributes = products.set_index("product_id")
    family = attributes.index.str.replace(r"[A-Za-z]+$", "", regex=True)
    attributes = pd.DataFrame(
        {
            "category": attributes["category"].fillna("unknown"),
            "product_family": np.where(family == "", attributes.index, family),
        },
        index=attributes.index,
    )
    sales = merch[~merch["is_return"]]
    order_units = sales.groupby(
        ["product_id", "ordered_date", "order_id", "customer_id"], dropna=False
    )["quantity"].sum()
    order_stats = (
        order_units.reset_index()
        .groupby(["product_id", "ordered_date"])
        .agg(customers=("customer_id", "nunique"), largest_order_units=("quantity", "max"))
    )
    order_stats.index.names = ["product_id", "demand_date"]
    days = demand.join(attributes, on="product_id").join(
        order_stats, on=["product_id", "demand_date"]
    )
    days["customers"] = days["customers"].fillna(0).astype("int64")
    days["largest_order_units"] = days["largest_order_units"].fillna(0).astype("int64")
    days["sale_day"] = (days["units_sold"] > 0).astype("int64")
    # std from exact integer sums of units and squared units (no running update to drift)
    days["units_squared"] = days["units_sold"].astype("float64") ** 2

    by_product = days.groupby("product_id", sort=False)

    def rolling(columns: list[str], rows: int, how: str) -> pd.DataFrame:
        frame = getattr(by_product[columns].rolling(rows, min_periods=1), how)()
        return frame.reset_index(level=0, drop=True)

    summed = ["units_sold", "units_squared", "sale_day", "units_returned", "orders", "customers"]
    sums_7 = rolling(["units_sold"], 7, "sum")["units_sold"]
    sums_28 = rolling(summed, 28, "sum")
    sums_91 = rolling(["units_sold", "sale_day", "orders"], 91, "sum")
    sums_182 = rolling(["units_sold"], 182, "sum")["units_sold"]
    maxima_28 = rolling(["units_sold", "largest_order_units"], 28, "max")
    prices_28 = rolling(["avg_unit_price"], 28, "mean")["avg_unit_price"]
    prices_91 = rolling(["avg_unit_price"], 91, "mean")["avg_unit_price"]
    # rows so far: a product's first windows hold fewer days
    rows = by_product.cumcount() + 1
    days_28 = np.minimum(rows, 28)
    sum_28 = sums_28["units_sold"]
    max_28 = maxima_28["units_sold"]
    variance = (days_28 * sums_28["units_squared"] - sum_28**2).clip(lower=0)
    mean_28_trimmed = (sum_28 - max_28) / np.maximum(days_28 - 1, 1)
    last_sale_date = (
        days["demand_date"].where(days["units_sold"] > 0).groupby(days["product_id"]).ffill()
    )
    last_price = by_product["avg_unit_price"].ffill()
    first_day = by_product["demand_date"].transform("min")

    category_daily = days.groupby(["category", "demand_date"])["units_sold"].mean()
    by_category = category_daily.groupby(level="category", sort=False)
    category = pd.DataFrame(
        {
            "category_mean_28": by_category.rolling(28, min_periods=1)
            .mean()
            .reset_index(level=0, drop=True),
            "category_mean_7": by_category.rolling(7, min_periods=1)
            .mean()
            .reset_index(level=0, drop=True),
        }
    )
    category = days[["category", "demand_date"]].join(category, on=["category", "demand_date"])
    category_mean_28 = category["category_mean_28"]

    features = pd.DataFrame(
        {
            "product_id": days["product_id"],
            "demand_date": days["demand_date"],
            "category": days["category"],
            "units_sold": days["units_sold"],
            "lag_7": by_product["units_sold"].shift(6).fillna(0).astype("int64"),
            "lag_14": by_product["units_sold"].shift(13).fillna(0).astype("int64"),
            "lag_28": by_product["units_sold"].shift(27).fillna(0).astype("int64"),
            "mean_7": sums_7 / np.minimum(rows, 7),
            "mean_28": sum_28 / days_28,
            "mean_91": sums_91["units_sold"] / np.minimum(rows, 91),
            "std_28": np.sqrt(variance) / days_28,
            "max_28": max_28.astype("int64"),
            "sale_days_28": sums_28["sale_day"].astype("int64"),
            "returned_28": sums_28["units_returned"].astype("int64"),
            "product_age_days": (days["demand_date"] - first_day) // DAY,
            "days_since_last_sale": (days["demand_date"] - last_sale_date) // DAY,
            "last_price": last_price,
            "price_ratio_91": (last_price / prices_91).where(prices_91 > 0, 1.0),
            "category_mean_28": category_mean_28,
            "product_family": days["product_family"],
            "mean_182": sums_182 / np.minimum(rows, 182),
            "mean_28_trimmed": mean_28_trimmed,
            "sale_days_91": sums_91["sale_day"].astype("int64"),
            "orders_28": sums_28["orders"].astype("int64"),
            "customer_days_28": sums_28["customers"].astype("int64"),
            "largest_order_28": maxima_28["largest_order_units"].astype("int64"),
            "units_per_order_91": (sums_91["units_sold"] / sums_91["orders"]).where(
                sums_91["orders"] > 0, 0.0
            ),
            "price_ratio_28": (last_price / prices_28).where(prices_28 > 0, 1.0),
            "category_trend_7_28": (category["category_mean_7"] / category_mean_28).where(
                category_mean_28 > 0, 1.0
            ),
        }
    )
    family = features.groupby(["product_family", "demand_date"])["mean_28_trimmed"]
    features["family_mean_28_trimmed"] = family.transform("mean")
    features["family_products"] = family.transform("size")
    return features


def customer_product_features(window: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """feat_customer_product at one cutoff: every pair bought in the 365 days up to it."""
    identified = window[window["customer_id"].notna()]
    pair_orders = identified.groupby(["customer_id", "product_id", "order_id"]).agg(
        ordered_date=("ordered_date", "min"),
        units=("quantity", "sum"),
        amount=("line_amount", "sum"),
    )
    age = (cutoff - pair_orders["ordered_date"]) // DAY
    pair_orders = pair_orders.assign(
        age=age,
        weight=np.exp(-age / 270.0),
        within_90=age < 90,
        within_30=age < 30,
    )
    pairs = pair_orders.groupby(level=["customer_id", "product_id"]).agg(
        pair_orders=("units", "size"),
        pair_units=("units", "sum"),
        pair_amount=("amount", "sum"),
        pair_recency_days=("age", "min"),
        pair_first_age_days=("age", "max"),
        pair_recency_weighted=("weight", "sum"),
        pair_orders_90=("within_90", "sum"),
        pair_orders_30=("within_30", "sum"),
    )
    gap_orders = (pairs["pair_orders"] - 1).where(pairs["pair_orders"] > 1)
    pairs["pair_mean_gap_days"] = (
        pairs["pair_first_age_days"] - pairs["pair_recency_days"]
    ) / gap_orders
    customers = identified.groupby("customer_id").agg(
        customer_orders_365=("order_id", "nunique"), last_order=("ordered_date", "max")
    )
    customers["customer_recency_days"] = (cutoff - customers.pop("last_order")) // DAY
    features = pairs.join(customers, on="customer_id").reset_index()
    features.insert(0, "cutoff_date", cutoff)
    return features


def product_popularity_features(window: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """feat_product_popularity at one cutoff: every product sold in the 365 days up to it."""
    age = (cutoff - window["ordered_date"]) // DAY
    year = window.groupby("product_id").agg(
        orders_365=("order_id", "nunique"),
        buyers_365=("customer_id", "nunique"),
        median_price_365=("unit_price", "median"),
    )
    month = (
        window[age < 30]
        .groupby("product_id")
        .agg(
            buyers_30=("customer_id", "nunique"),
            units_30=("quantity", "sum"),
            orders_30=("order_id", "nunique"),
        )
    )
    week = window[age < 7].groupby("product_id")["order_id"].nunique().rename("orders_7")
    features = year.join(month).join(week).fillna(0)
    columns = ["buyers_30", "units_30", "orders_30", "orders_7", "orders_365", "buyers_365"]
    features[columns] = features[columns].astype("int64")
    features = features[[*columns, "median_price_365"]].reset_index()
    features.insert(0, "cutoff_date", cutoff)
    return features


def cooccurrence_features(
    window: pd.DataFrame, cutoff: pd.Timestamp, neighbours: int, max_order_products: int
) -> pd.DataFrame:
    """feat_product_cooccurrence at one cutoff: per product, the ``neighbours`` products
    most often in the same order (orders of 2 to ``max_order_products`` distinct products)."""
    baskets = window[["order_id", "product_id"]].drop_duplicates()
    size = baskets.groupby("order_id")["product_id"].transform("size")
    baskets = baskets[(size >= 2) & (size <= max_order_products)]
    product_orders = baskets["product_id"].value_counts()
    pairs = baskets.merge(baskets, on="order_id", suffixes=("", "_related"))
    pairs = pairs[pairs["product_id"] != pairs["product_id_related"]]
    counts = (
        pairs.groupby(["product_id", "product_id_related"])
        .size()
        .rename("co_orders")
        .reset_index()
        .rename(columns={"product_id_related": "related_product_id"})
    )
    counts["product_orders"] = counts["product_id"].map(product_orders).astype("int64")
    counts["related_orders"] = counts["related_product_id"].map(product_orders).astype("int64")
    counts["confidence"] = counts["co_orders"] / counts["product_orders"]
    counts["cosine"] = counts["co_orders"] / np.sqrt(
        counts["product_orders"] * counts["related_orders"]
    )
    ranked = counts.sort_values(
        ["product_id", "co_orders", "related_product_id"], ascending=[True, False, True]
    )
    top = ranked.groupby("product_id", sort=False).head(neighbours).reset_index(drop=True)
    top.insert(0, "cutoff_date", cutoff)
    return top


def compute_marts(
    landing_dir: Path, out_dir: Path, run_date: dt.date, variables: Mapping
) -> dict[str, int]:
    """Compute every table of the nightly build as of ``run_date`` from the landing files
    and write each to ``out_dir/<table>.parquet``; returns the row count per table.
    ``variables`` are the dbt project's vars (cooccurrence_neighbours,
    cooccurrence_max_order_products)."""
    day = pd.Timestamp(run_date)
    order_lines = order_lines_table(landing_dir, run_date)
    lines = order_lines[order_lines["ordered_date"] <= day]
    shop_products = latest(
        read_entity(landing_dir, "products", run_date),
        "product_id",
        ["partition_date", "first_available_at"],
    )[["name", "category", "list_price", "first_available_at"]]
    shop_products["list_price"] = shop_products["list_price"].astype("float64").round(4)
    shop_customers = latest(
        read_entity(landing_dir, "customers", run_date), "customer_id", ["partition_date"]
    )[["created_at", "country"]]

    orders = orders_table(lines)
    products = products_table(lines, shop_products, run_date)
    customers = customers_table(orders, shop_customers, run_date)
    merch = lines[~lines["is_non_product"]]
    demand = daily_demand_table(merch, run_date)

    identified = merch[merch["customer_id"].notna()]
    returns = identified["is_return"]
    interactions = (
        identified.assign(
            bought=identified["quantity"].where(~returns, 0),
            returned=-identified["quantity"].where(returns, 0),
        )
        .groupby(["customer_id", "product_id"])
        .agg(
            units_bought=("bought", "sum"),
            units_returned=("returned", "sum"),
            net_amount=("line_amount", "sum"),
        )
    )
    bought = (
        identified[~returns]
        .groupby(["customer_id", "product_id"])
        .agg(
            first_ordered_date=("ordered_date", "min"),
            last_ordered_date=("ordered_date", "max"),
            order_count=("order_id", "nunique"),
        )
    )
    interactions = bought.join(interactions).reset_index()

    # the scoring cutoff: merchandise sales of the 365 days up to the run date
    sales = merch[~merch["is_return"]]
    window = sales[sales["ordered_date"] > day - 365 * DAY]
    tables = {
        "fct_order_lines": order_lines,
        "fct_orders": orders,
        "dim_products": products,
        "dim_customers": customers,
        "fct_product_daily_demand": demand,
        "fct_customer_product_interactions": interactions,
        "feat_product_daily": product_daily_features(demand, merch, products),
        "feat_customer_product": customer_product_features(window, day),
        "feat_product_popularity": product_popularity_features(window, day),
        "feat_product_cooccurrence": cooccurrence_features(
            window,
            day,
            int(variables["cooccurrence_neighbours"]),
            int(variables["cooccurrence_max_order_products"]),
        ),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    return {name: int(len(frame)) for name, frame in tables.items()}
