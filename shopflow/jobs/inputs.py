"""Reading model inputs from the warehouse, as of a date. Reads only: nothing here writes.

Every reader filters on the date it is given, so a caller cannot accidentally hand a model
rows from after its cutoff. The frames are the shapes of :mod:`ml.features`.

The ranker trains and is backtested at training cutoffs (D-28 ... D-168) that the nightly
build leaves out of the per-cutoff feature models: the ``build_training_features`` tasks of
``shopflow_nightly`` (first models) and ``shopflow_retrain`` add them. When they are missing,
:func:`read_training_recommend_inputs` says which command builds them instead of building.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.features import ForecastInputs, RecommendInputs
from ml.recommend.candidates.country_popular import WINDOW_DAYS
from ml.recommend.similarity import name_neighbours
from shopflow.dbt import training_cutoff_offsets
from shopflow.warehouse import connect, features_built_as_of, table_exists


class MissingInputsError(ValueError):
    """The warehouse lacks what a training or backtest as of a date reads (not retried)."""


# products per read of feat_product_daily for training: DuckDB's result and its conversion to
# pandas need several times the frame's memory, for one slice at a time instead of the whole.
# At size L (20,000 products, 11.6 million rows, a 3 GB frame) one read peaked at 12.1 GB RSS
# and slices of 2,500 products at 7.4 GB (the frame's slices plus their concatenation).
FORECAST_READ_PRODUCTS = 2_500


def read_forecast_inputs(
    con, as_of: dt.date, *, scoring: bool = False, history_days: int = 1
) -> ForecastInputs:
    """feat_product_daily rows up to ``as_of`` (training, backtests), ordered by product and
    day, read FORECAST_READ_PRODUCTS products at a time; with ``scoring=True`` only the rows
    of the ``history_days`` days ending on ``as_of`` (default: ``as_of`` itself): the forecast
    origin is all a trained model reads, a small share of the table (one day out of the whole
    history); a serving baseline reads its window."""
    if scoring:
        feat = con.execute(
            "select * from features.feat_product_daily where demand_date <= ? "
            "and demand_date > ? order by product_id, demand_date",
            [as_of, as_of - dt.timedelta(days=max(1, history_days))],
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


def missing_training_cutoffs(settings, con, as_of: dt.date) -> list[dt.date]:
    """The ranker's training cutoffs as of ``as_of`` (``training_cutoff_offsets_days``) that
    the per-cutoff features lack. A cutoff on or before the shop's first order day has no
    rows to build and is not expected."""
    if not table_exists(con, "features", "feat_product_popularity"):
        return [as_of]
    first = con.execute(
        "select min(ordered_date) from intermediate.int_order_lines_as_of"
    ).fetchone()[0]
    built = {
        row[0]
        for row in con.execute(
            "select distinct cutoff_date from features.feat_product_popularity "
            "where cutoff_date <= ?",
            [as_of],
        ).fetchall()
    }
    wanted = [as_of - dt.timedelta(days=days) for days in training_cutoff_offsets(settings)]
    return [c for c in wanted if first is not None and c > first and c not in built]


def require_training_cutoffs(settings, as_of: dt.date) -> None:
    """Fail fast, naming the command that builds them, when the ranker's training cutoffs as
    of ``as_of`` are not in the warehouse (reads only)."""
    built = features_built_as_of(settings)
    if built is None:
        raise MissingInputsError(
            "the warehouse has no features yet: run `shopflow run --date D` first "
            "(or `make run`, the demo shop)"
        )
    with connect(settings, read_only=True) as con:
        missing = missing_training_cutoffs(settings, con, as_of)
    if missing:
        raise MissingInputsError(
            f"the warehouse lacks the ranker's training cutoffs as of {as_of} "
            f"({', '.join(c.isoformat() for c in missing)}): "
            f"`shopflow retrain --date {as_of}` builds them (its build_training_features task; "
            "the retrain then also trains challengers), as does the first night of a new "
            "warehouse; the next nightly run drops them again"
        )


def read_training_recommend_inputs(
    settings, as_of: dt.date, max_customers: int = TRAINING_CUSTOMER_SAMPLE
) -> RecommendInputs:
    """Recommender inputs for training or a backtest as of ``as_of``: every feature cutoff up
    to it, of at most ``max_customers`` customers. Reads only: the training cutoffs must have
    been built (:func:`require_training_cutoffs` says how otherwise)."""
    require_training_cutoffs(settings, as_of)
    with connect(settings, read_only=True) as con:
        return read_recommend_inputs(
            con, as_of, settings.active_customer_days, max_customers=max_customers
        )


def read_training_forecast_inputs(settings, as_of: dt.date) -> ForecastInputs:
    """feat_product_daily up to ``as_of`` for training or a backtest."""
    with connect(settings, read_only=True) as con:
        return read_forecast_inputs(con, as_of)
