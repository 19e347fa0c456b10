"""Two-stage recommender: cheap candidate generators, then an XGBoost LambdaMART ranker.

Stage 1 (``ml.recommend.candidates``, per customer and cutoff): the customer's own purchases
(``repurchase``), basket co-occurrence (``bought_together``), name similarity (``similar``),
popularity in the customer's country (``country_popular``), trending products (``trending``)
and 30-day popularity (``popular``, which alone also serves customers without history).
Stage 2: XGBoost ``rank:ndcg`` with one query group per customer, trained at past cutoffs with
label 1 when the customer bought the product in the 28 days after the cutoff.

Cold start: a customer with no purchase in the 365 days up to the cutoff has nothing personal
to rank, and the ranker (which learns mostly from customers with a history) ordered their
candidates worse than plain 30-day popularity on the real year (NDCG@10 0.094 vs 0.114 over
246 such customers at the 2010-11-11 cutoff): they get the 30-day popular list
(:func:`cold_start_scores`), with reason ``popular``.

All features come from the ``feat_customer_product``, ``feat_product_popularity`` and
``feat_product_cooccurrence`` marts, computed per cutoff from order lines dated on or before
it, and from purchases filtered to the cutoff: nothing after a cutoff reaches its rows.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.recommend.candidates import CandidateContext
from ml.recommend.candidates._common import order_within_groups
from ml.recommend.candidates.context import at_cutoff
from ml.recommend.candidates.popular import popular_products as _ranked_popular
from ml.recommend.candidates.union import (
    MISSING_RANK,
    SOURCE_NAMES,
    source_columns,
    union_sql,
)

MODEL_NAME = "recommendations"
_SOURCE_NAMES = np.asarray(SOURCE_NAMES, dtype=object)

PAIR_FEATURES = [
    "pair_orders",
    "pair_units",
    "pair_amount",
    "pair_recency_days",
    "pair_first_age_days",
    "pair_recency_weighted",
    "pair_orders_90",
    "pair_orders_30",
    "pair_mean_gap_days",
    "pair_due_ratio",
    "pair_order_share",
    "pair_recency_gap",
]
PRODUCT_FEATURES = [
    "buyers_30",
    "units_30",
    "orders_30",
    "orders_7",
    "orders_365",
    "buyers_365",
    "median_price_365",
    "popularity_rank",
    "trend_ratio",
    "product_repeat_rate",
]
CUSTOMER_FEATURES = [
    "customer_products_365",
    "customer_orders_365",
    "customer_recency_days",
    "price_vs_customer",
    "customer_repeat_rate",
]
SOURCE_FEATURES = ["is_repurchase_candidate", *source_columns(), "n_sources"]
FEATURES = PAIR_FEATURES + PRODUCT_FEATURES + CUSTOMER_FEATURES + SOURCE_FEATURES
LABEL_WINDOW_DAYS = 28
# value of a feature that does not apply (no history of the pair, no neighbour ...)
FILL = {
    "pair_recency_days": 999.0,
    "pair_first_age_days": 999.0,
    "pair_mean_gap_days": 999.0,
    "customer_recency_days": 999.0,
    "popularity_rank": MISSING_RANK,
    "price_vs_customer": 1.0,
    **{c: MISSING_RANK for c in source_columns() if c.endswith("_rank")},
}


@dataclass(frozen=True)
class RankerParams:
    k: int = 10
    popular_candidates: int = 50
    repurchase_candidates: int = 300
    bought_together_candidates: int = 100
    similar_candidates: int = 50
    country_popular_candidates: int = 50
    trending_candidates: int = 20
    # negatives kept per query group when training (0 = all): a random sample is as good for
    # LambdaMART here and makes training on the real year several times faster
    negatives_per_customer: int = 60
    # query groups (customers) sampled per training cutoff (0 = all): bounds training time and
    # memory on large shops; a shop with fewer buyers per cutoff trains on every one of them.
    # Training stacks the six training cutoffs (dbt's training_cutoff_offsets_days): at most
    # 48,000 groups in all, about 2.9 million candidate rows at bench size M
    max_query_groups_per_cutoff: int = 8_000
    num_boost_round: int = 80
    max_depth: int = 6
    learning_rate: float = 0.15
    seed: int = 7
    nthread: int = 2

    def booster_params(self) -> dict:
        return {
            "objective": "rank:ndcg",
            "eval_metric": f"ndcg@{self.k}",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": 0.8,
            "min_child_weight": 1,
            "seed": self.seed,
            "nthread": self.nthread,
        }

    def candidate_sizes(self) -> dict[str, int]:
        """How many products each candidate source proposes per customer."""
        return {
            "repurchase": self.repurchase_candidates,
            "bought_together": self.bought_together_candidates,
            "similar": self.similar_candidates,
            "country_popular": self.country_popular_candidates,
            "trending": self.trending_candidates,
            "popular": self.popular_candidates,
        }

    @classmethod
    def from_dict(cls, values: dict) -> RankerParams:
        """Params from a saved record; fields unknown to this code are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def popular_products(
    popularity: pd.DataFrame, cutoff: dt.date, allowed: set[str] | None, n: int
) -> pd.DataFrame:
    """Top-n products by 30-day orders at the cutoff (ties: 30-day buyers, then product id)."""
    at = at_cutoff(popularity, cutoff)
    if allowed is not None:
        at = at[at["product_id"].isin(allowed)]
    return at.loc[_ranked_popular(at, n).index]


def build_candidates(
    pairs: pd.DataFrame,
    popularity: pd.DataFrame,
    customers: list[str],
    cutoff: dt.date,
    params: RankerParams,
    allowed: set[str] | None = None,
    *,
    cooccurrence: pd.DataFrame | None = None,
    similar: pd.DataFrame | None = None,
    purchases: pd.DataFrame | None = None,
    countries: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Candidate rows (customer, product, reason) with ranker features, at one cutoff.

    Only products sold in the 365 days up to the cutoff (and in ``allowed`` when given) are
    proposed, each once per customer. Sources whose input is not given (co-occurrence, name
    neighbours, purchases with countries) propose nothing; :func:`candidates_for` passes them
    all from a ``RecommendInputs``.
    """
    context = CandidateContext.build(
        pairs,
        popularity,
        customers,
        cutoff,
        allowed,
        cooccurrence=cooccurrence,
        similar=similar,
        purchases=purchases,
        countries=countries,
    )
    try:
        return candidates_from(context, list(customers), params)
    finally:
        context.close()


def _column(present: set[str], name: str, table: str) -> str:
    """``table.name`` as a double, or NULL when the mart has no such column (older marts,
    hand-made test frames)."""
    return f"cast({table}.{name} as double)" if name in present else "cast(null as double)"


def _ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator, NULL (then filled) where the denominator is 0 or NULL."""
    return f"(({numerator}) / nullif({denominator}, 0))"


def candidate_features_sql(context: CandidateContext, params: RankerParams) -> str:
    """Candidates of the context's ``chunk`` with every ranker feature, one row per (customer,
    product) by code, ordered by customer and product: the union of the generators joined
    with the pair, customer and product features of the cutoff.

    A feature that does not apply (no history of the pair, no neighbour ...) gets its FILL
    value (0 unless listed there); a ratio with a zero denominator counts as not applying.
    """
    pair_cols = context.columns("pairs")
    product_cols = context.columns("products")
    pair = {c: _column(pair_cols, c, "p") for c in PAIR_FEATURES}
    product = {c: _column(product_cols, c, "products") for c in PRODUCT_FEATURES}
    has = "customer_orders_365" in pair_cols
    # marts built before these columns existed: derive them from the pairs
    orders_365 = (
        "max(cast(customer_orders_365 as double))" if has else "max(cast(pair_orders as double))"
    )
    recency = (
        "max(cast(customer_recency_days as double))"
        if has
        else "min(cast(pair_recency_days as double))"
    )
    amount = _column(pair_cols, "pair_amount", "chunk_pairs")
    units = _column(pair_cols, "pair_units", "chunk_pairs")
    raw = {
        **pair,
        "pair_due_ratio": _ratio(pair["pair_recency_days"], pair["pair_mean_gap_days"]),
        "pair_order_share": _ratio(pair["pair_orders"], "customers.customer_orders_365"),
        # 0 when the product was in the customer's last order
        "pair_recency_gap": f"({pair['pair_recency_days']} - customers.customer_recency_days)",
        **product,
        "popularity_rank": "products.popularity_rank",
        "trend_ratio": _ratio(product["orders_7"], f"{product['orders_30']} + 1.0"),
        "product_repeat_rate": "product_repeat.product_repeat_rate",
        "customer_products_365": "customers.customer_products_365",
        "customer_orders_365": "customers.customer_orders_365",
        "customer_recency_days": "customers.customer_recency_days",
        "price_vs_customer": _ratio(product["median_price_365"], "customers.avg_unit_price"),
        "customer_repeat_rate": "customers.customer_repeat_rate",
        "is_repurchase_candidate": (
            f"case when u.reason_source = {SOURCE_NAMES.index('repurchase')} then 1.0 else 0.0 end"
        ),
        **{c: f"u.{c}" for c in SOURCE_FEATURES if c != "is_repurchase_candidate"},
    }
    # one fixed-size array column: it arrives in numpy as one float32 matrix, not one column each
    selected = ",\n".join(
        f"coalesce(cast({raw[c]} as double), {float(FILL.get(c, 0.0))!r})" for c in FEATURES
    )
    return f"""
        with u as ({union_sql(context, params.candidate_sizes())}),
        customers as (
            select
                customer_code,
                cast(count(distinct product_code) as double) as customer_products_365,
                {orders_365} as customer_orders_365,
                {recency} as customer_recency_days,
                -- DECIMAL sums are exact: the same whichever thread adds which rows
                case when sum(cast({units} as decimal(38, 12))) > 0
                    then cast(sum(cast({amount} as decimal(38, 12))) as double)
                        / cast(sum(cast({units} as decimal(38, 12))) as double)
                end as avg_unit_price,
                avg(case when cast(pair_orders as double) > 1 then 1.0 else 0.0 end)
                    as customer_repeat_rate
            from chunk_pairs
            group by customer_code
        )
        select u.customer_code, u.product_code, u.reason_source,
            cast([{selected}] as float[{len(FEATURES)}]) as features
        from u
        left join chunk_pairs as p using (customer_code, product_code)
        left join customers using (customer_code)
        left join (
            select *, cast(rank() over (order by orders_30 desc) as double) as popularity_rank
            from products
        ) as products using (product_code)
        left join product_repeat using (product_code)
        order by u.customer_code, u.product_code
    """


@dataclass(frozen=True)
class CandidateBatch:
    """One chunk's candidates as arrays, one row per (customer, product), ordered by customer
    and product code (codes sort like the ids, see ``CandidateContext``). Nightly scoring
    reads these and looks ids up for the kept rows only: the ids of millions of candidates
    are never turned into Python strings."""

    customer_codes: np.ndarray
    product_codes: np.ndarray
    sources: np.ndarray  # each row's reason, as its place in SOURCE_NAMES
    features: np.ndarray  # float32, one column per FEATURES entry (what the booster reads)

    @property
    def reasons(self) -> np.ndarray:
        """Each row's reason (the source's name), as an object array."""
        return _SOURCE_NAMES[self.sources]


def candidate_batch(
    context: CandidateContext, customers: list[str], params: RankerParams
) -> CandidateBatch:
    """The candidates of ``customers`` (all of them in ``context``) with ranker features."""
    context.use_customers(customers)
    table = context.con.sql(candidate_features_sql(context, params)).to_arrow_table()
    # a fixed-size array column: its values are one float32 buffer, read without a copy
    features = table.column("features").combine_chunks()
    matrix = np.asarray(features.values.to_numpy(zero_copy_only=False), dtype=np.float32)
    codes = {
        c: table.column(c).to_numpy() for c in ("customer_code", "product_code", "reason_source")
    }
    return CandidateBatch(
        codes["customer_code"],
        codes["product_code"],
        codes["reason_source"],
        matrix.reshape(table.num_rows, len(FEATURES)),
    )


def candidates_from(
    context: CandidateContext, customers: list[str], params: RankerParams
) -> pd.DataFrame:
    """Candidates with ranker features for ``customers`` (all of them in ``context``):
    customer_id, product_id, reason and FEATURES (float32, what the booster reads), ordered
    by customer and product."""
    batch = candidate_batch(context, customers, params)
    customer_ids, product_ids = context.ids_of(batch.customer_codes, batch.product_codes)
    keys = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "product_id": product_ids,
            "reason": batch.reasons,
        }
    )
    values = pd.DataFrame(batch.features, columns=FEATURES, copy=False)
    return pd.concat([keys, values], axis=1)


def context_for(
    inputs, customers: list[str], cutoff: dt.date, allowed: set[str] | None = None
) -> CandidateContext:
    """The candidate context with every source a ``ml.features.RecommendInputs`` provides."""
    return CandidateContext.build(
        inputs.pairs,
        inputs.popularity,
        customers,
        cutoff,
        allowed,
        cooccurrence=getattr(inputs, "cooccurrence", None),
        similar=getattr(inputs, "similar", None),
        purchases=inputs.purchases,
        countries=getattr(inputs, "countries", None),
    )


def candidates_for(
    inputs,
    customers: list[str],
    cutoff: dt.date,
    params: RankerParams,
    allowed: set[str] | None = None,
) -> pd.DataFrame:
    """build_candidates with every source a ``ml.features.RecommendInputs`` provides."""
    context = context_for(inputs, customers, cutoff, allowed)
    try:
        return candidates_from(context, list(customers), params)
    finally:
        context.close()


def candidate_chunks(
    inputs,
    customers: list[str],
    cutoff: dt.date,
    params: RankerParams,
    allowed: set[str] | None = None,
):
    """candidates_for, CUSTOMER_CHUNK customers at a time (one context for the cutoff), so
    memory is bounded by one chunk's candidates; the rows are the same as in one call."""
    context = context_for(inputs, customers, cutoff, allowed)
    try:
        for chunk in customer_chunks(list(customers)):
            yield candidates_from(context, chunk, params)
    finally:
        context.close()


# customers whose candidates are built and scored at once: bounds memory on large shops
# (a customer's candidates and features do not depend on which other customers are asked)
CUSTOMER_CHUNK = 10_000


def customer_chunks(customers: list[str], size: int | None = None):
    """``customers`` in consecutive slices of at most ``size`` (default CUSTOMER_CHUNK)."""
    size = size or CUSTOMER_CHUNK
    for start in range(0, len(customers), size):
        yield customers[start : start + size]


def recommend_for(
    ranker: Ranker,
    inputs,
    customers: list[str],
    cutoff: dt.date,
    depths: tuple[int, ...],
    allowed: set[str] | None = None,
) -> tuple[pd.DataFrame, ...]:
    """The ranker's top lists at each depth in ``depths`` for ``customers`` at ``cutoff``.

    Candidates are built and scored CUSTOMER_CHUNK customers at a time, so memory is bounded
    by one chunk's candidates whatever the number of customers; the lists are the same as
    from one call with every customer.
    """
    parts: list[list[pd.DataFrame]] = [[] for _ in depths]
    context = context_for(inputs, customers, cutoff, allowed)
    try:
        for chunk in customer_chunks(list(customers)):
            batch = candidate_batch(context, chunk, ranker.params)
            scores = ranker.score_batch(batch)
            reasons = batch_reasons(batch)
            for part, depth in zip(parts, depths, strict=True):
                keep, rank = top_k_rows(batch.customer_codes, batch.product_codes, scores, depth)
                customer_ids, product_ids = context.ids_of(
                    batch.customer_codes[keep], batch.product_codes[keep]
                )
                part.append(_lists(customer_ids, rank, product_ids, scores[keep], reasons[keep]))
    finally:
        context.close()
    return tuple(pd.concat(part, ignore_index=True) for part in parts)


def label_candidates(
    candidates: pd.DataFrame, purchases: pd.DataFrame, cutoff: dt.date
) -> pd.DataFrame:
    """label = 1 when the customer bought the product in (cutoff, cutoff + 28 days]."""
    dates = pd.to_datetime(purchases["ordered_date"])
    window = purchases[
        (dates > pd.Timestamp(cutoff))
        & (dates <= pd.Timestamp(cutoff) + pd.Timedelta(days=LABEL_WINDOW_DAYS))
    ][["customer_id", "product_id"]].drop_duplicates()
    window["label"] = 1
    labelled = candidates.merge(window, on=["customer_id", "product_id"], how="left")
    labelled["label"] = labelled["label"].fillna(0).astype(int)
    return labelled


def sample_negatives(data: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Every positive row and at most n random negatives per customer (same seed, same rows)."""
    if n <= 0:
        return data
    draw = np.random.default_rng(seed).random(len(data))
    key = pd.Series(np.where(data["label"].to_numpy() > 0, -1.0, draw), index=data.index)
    order = key.groupby(data["customer_id"]).rank(method="first")
    positives = data.groupby("customer_id")["label"].transform("sum")
    return data[order <= positives + n].reset_index(drop=True)


def _qid(frame: pd.DataFrame) -> np.ndarray:
    return pd.factorize(frame["customer_id"])[0]


@dataclass
class Ranker:
    booster: xgb.Booster
    params: RankerParams

    @classmethod
    def train(cls, labelled: pd.DataFrame, params: RankerParams) -> Ranker:
        """Fit LambdaMART, one query group per customer (per customer and cutoff)."""
        # groups without a positive carry no ranking signal for LambdaMART
        positive = labelled.groupby("customer_id")["label"].transform("max") > 0
        data = labelled[positive].sort_values(["customer_id", "product_id"], ignore_index=True)
        if data.empty:
            raise ValueError("no customer bought a candidate in the label window: nothing to learn")
        data = sample_negatives(data, params.negatives_per_customer, params.seed)
        matrix = xgb.DMatrix(
            data[FEATURES].to_numpy(dtype="float32"),
            label=data["label"].to_numpy(),
            qid=_qid(data),
            feature_names=FEATURES,
        )
        booster = xgb.train(params.booster_params(), matrix, num_boost_round=params.num_boost_round)
        return cls(booster, params)

    def score(self, candidates: pd.DataFrame) -> np.ndarray:
        """Scores of the candidates' rows (higher is better): the ranker's, and for customers
        without history the popularity order (:func:`cold_start_scores`)."""
        values = candidates[FEATURES].to_numpy(dtype="float32")
        return self._scores(values, candidates["product_id"].to_numpy(dtype=object))

    def score_batch(self, batch: CandidateBatch) -> np.ndarray:
        """:meth:`score` of a :class:`CandidateBatch` (product codes sort like the ids)."""
        return self._scores(batch.features, batch.product_codes)

    def _scores(self, values: np.ndarray, product_keys: np.ndarray) -> np.ndarray:
        if len(values) == 0:
            return np.zeros(0, dtype="float32")
        # inplace_predict reads the array as it is: no DMatrix copy of a large chunk
        scores = self.booster.inplace_predict(values, validate_features=False)
        return cold_start_scores(values, product_keys, scores)

    def recommend(self, candidates: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """Top-k per customer (default params.k): customer_id, rank, product_id, score, reason."""
        return top_k_of_candidates(
            candidates, self.score(candidates), k or self.params.k, reasons=reasons_of(candidates)
        )

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ranker.ubj"
        self.booster.save_model(path)
        (folder / "params.json").write_text(json.dumps(self.params.__dict__, sort_keys=True))
        return [path, folder / "params.json"]

    @classmethod
    def load(cls, folder: Path) -> Ranker:
        params = RankerParams.from_dict(json.loads((folder / "params.json").read_text()))
        booster = xgb.Booster()
        booster.load_model(folder / "ranker.ubj")
        if list(booster.feature_names or []) != FEATURES:
            raise ValueError(
                f"model in {folder} expects features {booster.feature_names}, "
                f"this code provides {FEATURES}"
            )
        return cls(booster, params)


def _feature(values: np.ndarray, name: str) -> np.ndarray:
    return values[:, FEATURES.index(name)]


def is_cold_start(customer_products_365: np.ndarray) -> np.ndarray:
    """Rows of customers with no purchase in the 365 days up to the cutoff (by each row's
    ``customer_products_365`` feature)."""
    return np.asarray(customer_products_365) == 0


def cold_start_scores(
    values: np.ndarray, product_keys: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """``scores`` with the rows of customers without history replaced by 1 / the product's
    place in the 30-day popularity order (orders, then buyers, then 365-day orders, then
    product id: :func:`ml.recommend.candidates.popular.popular_products`), so such a
    customer's top k is the popularity baseline's list.

    ``values``: the rows' FEATURES matrix; ``product_keys``: each row's product id, or codes
    that sort like the ids."""
    cold = is_cold_start(_feature(values, "customer_products_365"))
    if not cold.any():
        return scores
    rows = values[cold]
    # product features are the same in every row of a product: its first row speaks for it
    products, first, inverse = np.unique(
        np.asarray(product_keys)[cold], return_index=True, return_inverse=True
    )
    order = np.lexsort(
        (
            np.arange(len(products)),  # product id, as np.unique sorted them
            -_feature(rows, "orders_365")[first],
            -_feature(rows, "buyers_30")[first],
            -_feature(rows, "orders_30")[first],
        )
    )
    place = np.empty(len(products), dtype=np.float32)
    place[order] = np.arange(1, len(products) + 1, dtype=np.float32)
    scores = np.array(scores, dtype="float32", copy=True)
    scores[cold] = 1.0 / place[inverse.reshape(-1)]
    return scores


def _reasons(
    reasons: np.ndarray, customer_products_365: np.ndarray, popular_rank: np.ndarray
) -> np.ndarray:
    """``reasons`` with ``popular`` for a customer without history whose list is the popular
    one (see :func:`cold_start_scores`)."""
    cold = is_cold_start(customer_products_365) & (np.asarray(popular_rank) < MISSING_RANK)
    if cold.any():
        reasons = reasons.copy()
        reasons[cold] = "popular"
    return reasons


def reasons_of(candidates: pd.DataFrame) -> np.ndarray:
    """Each candidate row's reason (see :func:`_reasons`)."""
    return _reasons(
        candidates["reason"].to_numpy(dtype=object),
        candidates["customer_products_365"].to_numpy(),
        candidates["popular_rank"].to_numpy(),
    )


def batch_reasons(batch: CandidateBatch) -> np.ndarray:
    """Each batch row's reason (see :func:`_reasons`)."""
    return _reasons(
        batch.reasons,
        _feature(batch.features, "customer_products_365"),
        _feature(batch.features, "popular_rank"),
    )


def top_k_rows(
    customer_codes: np.ndarray, product_codes: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of each customer's top k (highest score first, ties by product code, customers
    by code) and their ranks: ``np.lexsort((product_codes, -scores, customer_codes))`` cut at
    k, sorting customer numbers that fit 16 bits (see :func:`order_within_groups`)."""
    customers = np.asarray(customer_codes)
    products = np.asarray(product_codes)
    ordered = len(customers) < 2 or bool(
        np.all(
            (customers[1:] > customers[:-1])
            | ((customers[1:] == customers[:-1]) & (products[1:] > products[:-1]))
        )
    )
    first = np.arange(len(customers)) if ordered else np.lexsort((products, customers))
    sorted_customers = customers[first]
    group = np.concatenate([[0], np.cumsum(sorted_customers[1:] != sorted_customers[:-1])]).astype(
        np.int64
    )
    within = order_within_groups(group, np.asarray(scores, dtype=np.float64)[first])
    grouped = group[within]
    rank = np.arange(len(within)) - np.searchsorted(grouped, grouped, side="left") + 1
    return first[within][rank <= k], rank[rank <= k].astype("int64")


def _lists(customer_ids, rank, product_ids, scores, reasons) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": np.asarray(customer_ids, dtype=object),
            "rank": rank,
            "product_id": np.asarray(product_ids, dtype=object),
            "score": np.asarray(scores, dtype="float64"),
            "reason": np.asarray(reasons, dtype=object),
        }
    )


def top_k_of_candidates(
    candidates: pd.DataFrame,
    scores: np.ndarray,
    k: int,
    reasons: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`top_k` for candidates (one row per customer and product) and their scores, in
    numpy: highest score first per customer, ties by product id, customers in id order.
    ``reasons``: each row's reason (default: the candidates' ``reason`` column)."""
    # hash-factorise, then order the (few) distinct ids: no sort of millions of strings
    customer_codes, _ = pd.factorize(candidates["customer_id"], sort=True)
    product_codes, _ = pd.factorize(candidates["product_id"], sort=True)
    keep, rank = top_k_rows(customer_codes, product_codes, scores, k)
    if reasons is None:
        reasons = candidates["reason"].to_numpy(dtype=object)
    return _lists(
        candidates["customer_id"].to_numpy(dtype=object)[keep],
        rank,
        candidates["product_id"].to_numpy(dtype=object)[keep],
        np.asarray(scores, dtype="float64")[keep],
        np.asarray(reasons, dtype=object)[keep],
    )


def top_k(scored: pd.DataFrame, k: int) -> pd.DataFrame:
    """Highest score first per customer, ties by product id; ranks 1..k, each product once."""
    ordered = scored.drop_duplicates(["customer_id", "product_id"]).sort_values(
        ["customer_id", "score", "product_id"], ascending=[True, False, True]
    )
    ordered["rank"] = ordered.groupby("customer_id").cumcount() + 1
    result = ordered[ordered["rank"] <= k]
    return result[["customer_id", "rank", "product_id", "score", "reason"]].reset_index(drop=True)
