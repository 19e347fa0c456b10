"""Two-stage recommender: cheap candidate generators, then an XGBoost LambdaMART ranker.

Stage 1 (candidates, per customer and cutoff): the customer's own purchase history of the
last 365 days (``repurchase``) and the most popular products of the last 30 days
(``popular``). Stage 2: XGBoost ``rank:ndcg`` with one query group per customer, trained at
past cutoffs with label 1 when the customer bought the product in the 28 days after the cutoff.

All features come from the ``feat_customer_product`` and ``feat_product_popularity`` marts,
which are computed per cutoff from order lines dated on or before it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

MODEL_NAME = "recommendations"

PAIR_FEATURES = [
    "pair_orders",
    "pair_units",
    "pair_amount",
    "pair_recency_days",
    "pair_first_age_days",
    "pair_recency_weighted",
    "pair_orders_90",
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
]
CUSTOMER_FEATURES = ["customer_products_365", "customer_orders_365"]
SOURCE_FEATURES = ["is_repurchase_candidate", "repurchase_rank"]
FEATURES = PAIR_FEATURES + PRODUCT_FEATURES + CUSTOMER_FEATURES + SOURCE_FEATURES
LABEL_WINDOW_DAYS = 28


@dataclass(frozen=True)
class RankerParams:
    k: int = 10
    popular_candidates: int = 50
    num_boost_round: int = 120
    max_depth: int = 6
    learning_rate: float = 0.1
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


def popular_products(
    popularity: pd.DataFrame, cutoff: dt.date, allowed: set[str] | None, n: int
) -> pd.DataFrame:
    """Top-n products by 30-day orders at the cutoff (ties: 30-day buyers, then product id)."""
    at = popularity[pd.to_datetime(popularity["cutoff_date"]) == pd.Timestamp(cutoff)]
    if allowed is not None:
        at = at[at["product_id"].isin(allowed)]
    at = at.sort_values(
        ["orders_30", "buyers_30", "orders_365", "product_id"],
        ascending=[False, False, False, True],
    )
    return at.head(n)


def build_candidates(
    pairs: pd.DataFrame,
    popularity: pd.DataFrame,
    customers: list[str],
    cutoff: dt.date,
    params: RankerParams,
    allowed: set[str] | None = None,
) -> pd.DataFrame:
    """Candidate rows (customer, product, reason) with ranker features, at one cutoff."""
    cutoff_ts = pd.Timestamp(cutoff)
    at_pairs = pairs[
        (pd.to_datetime(pairs["cutoff_date"]) == cutoff_ts) & pairs["customer_id"].isin(customers)
    ]
    if allowed is not None:
        at_pairs = at_pairs[at_pairs["product_id"].isin(allowed)]
    at_pairs = at_pairs.assign(reason="repurchase")

    popular = popular_products(popularity, cutoff, allowed, params.popular_candidates)
    popular_rows = pd.DataFrame(
        {
            "customer_id": np.repeat(np.asarray(customers, dtype=object), len(popular)),
            "product_id": np.tile(popular["product_id"].to_numpy(), len(customers)),
            "reason": "popular",
        }
    )
    candidates = pd.concat(
        [at_pairs[["customer_id", "product_id", "reason"]], popular_rows], ignore_index=True
    ).drop_duplicates(["customer_id", "product_id"], keep="first")

    candidates = candidates.merge(
        at_pairs[["customer_id", "product_id", *PAIR_FEATURES]],
        on=["customer_id", "product_id"],
        how="left",
    )
    at_popularity = popularity[pd.to_datetime(popularity["cutoff_date"]) == cutoff_ts].copy()
    at_popularity["popularity_rank"] = at_popularity["orders_30"].rank(
        ascending=False, method="min"
    )
    candidates = candidates.merge(
        at_popularity[["product_id", *[f for f in PRODUCT_FEATURES]]], on="product_id", how="left"
    )
    customer_stats = (
        at_pairs.groupby("customer_id")
        .agg(
            customer_products_365=("product_id", "nunique"),
            customer_orders_365=("pair_orders", "sum"),
        )
        .reset_index()
    )
    candidates = candidates.merge(customer_stats, on="customer_id", how="left")
    candidates["is_repurchase_candidate"] = (candidates["reason"] == "repurchase").astype(int)
    candidates["repurchase_rank"] = candidates.groupby("customer_id")["pair_recency_weighted"].rank(
        ascending=False, method="first"
    )
    fill = {c: 0.0 for c in FEATURES}
    fill.update({"pair_recency_days": 999.0, "pair_first_age_days": 999.0})
    fill.update({"popularity_rank": 9999.0, "repurchase_rank": 9999.0})
    candidates[FEATURES] = candidates[FEATURES].astype("float64").fillna(fill)
    return candidates.sort_values(["customer_id", "product_id"], ignore_index=True)


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


def _qid(frame: pd.DataFrame) -> np.ndarray:
    return pd.factorize(frame["customer_id"])[0]


@dataclass
class Ranker:
    booster: xgb.Booster
    params: RankerParams

    @classmethod
    def train(cls, labelled: pd.DataFrame, params: RankerParams) -> Ranker:
        # groups without a positive carry no ranking signal for LambdaMART
        positive = labelled.groupby("customer_id")["label"].transform("max") > 0
        data = labelled[positive].sort_values(["customer_id", "product_id"], ignore_index=True)
        if data.empty:
            raise ValueError("no customer bought a candidate in the label window: nothing to learn")
        matrix = xgb.DMatrix(
            data[FEATURES].to_numpy(dtype="float32"),
            label=data["label"].to_numpy(),
            qid=_qid(data),
            feature_names=FEATURES,
        )
        booster = xgb.train(params.booster_params(), matrix, num_boost_round=params.num_boost_round)
        return cls(booster, params)

    def score(self, candidates: pd.DataFrame) -> np.ndarray:
        matrix = xgb.DMatrix(candidates[FEATURES].to_numpy(dtype="float32"), feature_names=FEATURES)
        return self.booster.predict(matrix)

    def recommend(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """Top-k per customer: customer_id, rank (1..k), product_id, score, reason."""
        scored = candidates[["customer_id", "product_id", "reason"]].copy()
        scored["score"] = self.score(candidates).astype("float64")
        return top_k(scored, self.params.k)

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ranker.ubj"
        self.booster.save_model(path)
        (folder / "params.json").write_text(json.dumps(self.params.__dict__, sort_keys=True))
        return [path, folder / "params.json"]

    @classmethod
    def load(cls, folder: Path) -> Ranker:
        params = RankerParams(**json.loads((folder / "params.json").read_text()))
        booster = xgb.Booster()
        booster.load_model(folder / "ranker.ubj")
        if list(booster.feature_names or []) != FEATURES:
            raise ValueError(
                f"model in {folder} expects features {booster.feature_names}, "
                f"this code provides {FEATURES}"
            )
        return cls(booster, params)


def top_k(scored: pd.DataFrame, k: int) -> pd.DataFrame:
    """Highest score first per customer, ties by product id; ranks 1..k, each product once."""
    ordered = scored.drop_duplicates(["customer_id", "product_id"]).sort_values(
        ["customer_id", "score", "product_id"], ascending=[True, False, True]
    )
    ordered["rank"] = ordered.groupby("customer_id").cumcount() + 1
    result = ordered[ordered["rank"] <= k]
    return result[["customer_id", "rank", "product_id", "score", "reason"]].reset_index(drop=True)
