"""Glue between the warehouse's feature marts and the models: read frames, as of a date.

Every reader filters on the date it is given, so a caller cannot accidentally hand a model
rows from after its cutoff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import pandas as pd

from ml.recommend.similarity import name_neighbours


@dataclass
class ForecastInputs:
    feat: pd.DataFrame  # feat_product_daily rows up to the date


@dataclass
class RecommendInputs:
    pairs: pd.DataFrame  # feat_customer_product (all cutoffs built for this run)
    popularity: pd.DataFrame  # feat_product_popularity
    purchases: pd.DataFrame  # customer_id, product_id, ordered_date (merchandise, no returns)
    active_customers: list[str]
    sellable: set[str]
    cooccurrence: pd.DataFrame | None = None  # feat_product_cooccurrence (all cutoffs)
    similar: pd.DataFrame | None = None  # product name neighbours (ml.recommend.similarity)
    countries: dict[str, str] = field(default_factory=dict)  # customer_id -> country


# products per read of feat_product_daily for training: DuckDB's result and its conversion to
# pandas need several times the frame's memory, for one slice at a time instead of the whole.
# At size L (20,000 products, 11.6 million rows, a 3 GB frame) one read peaked at 12.1 GB RSS
# and slices of 2,500 products at 7.4 GB (the frame's slices plus their concatenation).
FORECAST_READ_PRODUCTS = 2_500


def read_forecast_inputs(con, as_of: dt.date, *, scoring: bool = False) -> ForecastInputs:
    """feat_product_daily rows up to ``as_of`` (training, backtests), ordered by product and
    day, read FORECAST_READ_PRODUCTS products at a time; with ``scoring=True`` only the rows
    of ``as_of`` itself: the forecast origin is all nightly scoring reads, a small share of
    the table (one day out of the whole history)."""
    if scoring:
        feat = con.execute(
            "select * from features.feat_product_daily where demand_date = ? order by product_id",
            [as_of],
        ).df()
        return ForecastInputs(feat=feat)
    query = (
        "select * from features.feat_product_daily where demand_date <= ? {slice} "
        "order by product_id, demand_date"
    )
    products = [
        r[0]
        for r in con.execute(
            "select distinct product_id from features.feat_product_daily "
            "where demand_date <= ? order by product_id",
            [as_of],
        ).fetchall()
    ]
    slices = [
        products[start : start + FORECAST_READ_PRODUCTS]
        for start in range(0, len(products), FORECAST_READ_PRODUCTS)
    ]
    if len(slices) <= 1:
        return ForecastInputs(feat=con.execute(query.format(slice=""), [as_of]).df())
    parts = [
        con.execute(
            query.format(slice="and product_id between ? and ?"), [as_of, part[0], part[-1]]
        ).df()
        for part in slices
    ]
    return ForecastInputs(feat=pd.concat(parts, ignore_index=True))


# Training and backtests read the customer-level rows (pairs, purchases) of at most this many
# customers: a sample that is the same on every run (the first ids in md5 order). A shop with
# fewer customers is read whole. The ranker trains on at most max_query_groups_per_cutoff
# customers per cutoff anyway; this bounds what is read into memory, which at 500,000
# customers (bench size L) would be every cutoff's pairs, over 20 GB in pandas. Product-level
# inputs (popularity, co-occurrence) always cover every customer.
TRAINING_CUSTOMER_SAMPLE = 50_000


def training_customer_sample(con, as_of: dt.date, limit: int) -> pd.DataFrame | None:
    """The customers training reads (see TRAINING_CUSTOMER_SAMPLE), or None for all."""
    known = """
        select distinct customer_id from intermediate.int_order_lines_as_of
        where customer_id is not null and ordered_date <= ?
    """
    count = con.execute(f"select count(*) from ({known})", [as_of]).fetchone()[0]
    if count <= limit:
        return None
    return con.execute(
        f"select customer_id from ({known}) order by md5(customer_id), customer_id limit ?",
        [as_of, int(limit)],
    ).df()


def read_recommend_inputs(
    con,
    as_of: dt.date,
    active_customer_days: int,
    *,
    scoring: bool = False,
    max_customers: int | None = None,
) -> RecommendInputs:
    """Everything the recommender reads, as of ``as_of``.

    For training and backtests (default): every feature cutoff up to ``as_of`` and the whole
    purchase history (labels), of at most ``max_customers`` customers (a fixed sample, see
    :func:`training_customer_sample`; None: all). For nightly scoring (``scoring=True``): the
    cutoff ``as_of`` only and the purchases the candidate generators look back on, which at
    scale is a small share of the rows.
    """
    from ml.recommend.candidates.country_popular import WINDOW_DAYS

    cutoff_rule = "cutoff_date = ?" if scoring else "cutoff_date <= ?"
    since = as_of - dt.timedelta(days=WINDOW_DAYS) if scoring else dt.date(1900, 1, 1)
    customer_rule = ""
    sample = (
        None
        if scoring or not max_customers
        else training_customer_sample(con, as_of, max_customers)
    )
    if sample is not None:
        # a registered frame: nothing is written to the (read-only) warehouse
        con.register("customer_sample", sample)
        customer_rule = "and customer_id in (select customer_id from customer_sample)"
    pairs = con.execute(
        f"select * exclude (source_batch_id) from features.feat_customer_product "
        f"where {cutoff_rule} {customer_rule} order by cutoff_date, customer_id, product_id",
        [as_of],
    ).df()
    popularity = con.execute(
        f"select * exclude (source_batch_id) from features.feat_product_popularity "
        f"where {cutoff_rule} order by cutoff_date, product_id",
        [as_of],
    ).df()
    purchases = con.execute(
        f"""
        select customer_id, product_id, ordered_date
        from intermediate.int_order_lines_as_of
        where customer_id is not null and not is_non_product and not is_return
          and ordered_date <= ? and ordered_date > ? {customer_rule}
        """,
        [as_of, since],
    ).df()
    if sample is not None:
        con.unregister("customer_sample")
    active = [
        r[0]
        for r in con.execute(
            "select customer_id from marts.dim_customers "
            "where last_order_date > ?::date - to_days(?) order by customer_id",
            [as_of, active_customer_days],
        ).fetchall()
    ]
    sellable = {
        r[0]
        for r in con.execute(
            "select product_id from marts.dim_products where is_sellable"
        ).fetchall()
    }
    cooccurrence = con.execute(
        "select cutoff_date, product_id, related_product_id, co_orders, confidence, cosine "
        f"from features.feat_product_cooccurrence where {cutoff_rule} "
        "order by cutoff_date, product_id, related_product_id",
        [as_of],
    ).df()
    names = con.execute(
        "select product_id, product_name from marts.dim_products "
        "where not is_non_product order by product_id"
    ).df()
    countries = dict(
        con.execute(
            "select customer_id, country from marts.dim_customers where country is not null"
        ).fetchall()
    )
    return RecommendInputs(
        pairs,
        popularity,
        purchases,
        active,
        sellable,
        cooccurrence=cooccurrence,
        similar=name_neighbours(names),
        countries=countries,
    )


def read_training_recommend_inputs(
    settings, as_of: dt.date, max_customers: int = TRAINING_CUSTOMER_SAMPLE
) -> RecommendInputs:
    """Recommender inputs for training or a backtest as of ``as_of``: first adds the training
    cutoffs to the feature marts (:func:`shopflow.dbt.build_training_features`; the nightly
    build leaves them out), then reads every cutoff, of at most ``max_customers`` customers."""
    from shopflow.dbt import build_training_features
    from shopflow.warehouse import connect

    build_training_features(settings, as_of)
    with connect(settings, read_only=True) as con:
        return read_recommend_inputs(
            con, as_of, settings.active_customer_days, max_customers=max_customers
        )


def frame_fingerprint(frame: pd.DataFrame) -> dict:
    """Row count and a content checksum of a training frame (for the registry record)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return {
        "rows": int(len(frame)),
        "columns": int(frame.shape[1]),
        "sha256": hashlib.sha256(hashed.tobytes()).hexdigest(),
    }
