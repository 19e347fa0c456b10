"""Two-stage recommender: cheap candidate generators, then an XGBoost LambdaMART ranker.

Stage 1 (``ml.recommend.candidates``, per customer and cutoff): the customer's own purchases
(``repurchase``), basket co-occurrence (``bought_together``), name similarity (``similar``),
popularity in the customer's country (``country_popular``), trending products (``trending``)
and 30-day popularity (``popular``, which alone also serves customers without history).
Stage 2 (this module): XGBoost ``rank:ndcg`` with one query group per customer, trained at
past cutoffs with label 1 when the customer bought the product in the 28 days after the
cutoff.

The features the model reads (:data:`FEATURES`) are computed in
:mod:`ml.recommend.candidate_features`; the top-k lists, cold start and reasons are in
:mod:`ml.recommend.top_k`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.recommend.candidate_features import FEATURES, CandidateBatch
from ml.recommend.params import RankerParams
from ml.recommend.top_k import cold_start_scores, reasons_of, top_k_of_candidates

__all__ = [
    "FEATURES",
    "LABEL_WINDOW_DAYS",
    "MODEL_NAME",
    "Ranker",
    "RankerParams",
    "label_candidates",
    "sample_negatives",
]

MODEL_NAME = "recommendations"
# a candidate is a positive when the customer bought it within this many days after the cutoff
LABEL_WINDOW_DAYS = 28


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
    """A trained LambdaMART booster and the params it was trained (and scores) with."""

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
        """Write the booster and its params to ``folder``; returns the files written."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ranker.ubj"
        self.booster.save_model(path)
        (folder / "params.json").write_text(json.dumps(self.params.__dict__, sort_keys=True))
        return [path, folder / "params.json"]

    @classmethod
    def load(cls, folder: Path) -> Ranker:
        """The ranker saved in ``folder``; refuses one trained on other FEATURES."""
        params = RankerParams.from_dict(json.loads((folder / "params.json").read_text()))
        booster = xgb.Booster()
        booster.load_model(folder / "ranker.ubj")
        if list(booster.feature_names or []) != FEATURES:
            # a champion trained by an older version of this code (e.g. before a candidate
            # source was added): refuse loudly rather than score with misaligned columns
            missing = [f for f in FEATURES if f not in (booster.feature_names or [])]
            raise ValueError(
                f"model in {folder} expects features {booster.feature_names}, "
                f"this code provides {FEATURES} (new: {missing}); train and promote a new "
                "ranker with `shopflow retrain --date <date>`"
            )
        return cls(booster, params)
