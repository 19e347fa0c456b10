from __future__ import annotations

import datetime as dt

import pytest

from ml.features import read_recommend_inputs
from ml.recommend.ranker import Ranker, RankerParams, build_candidates, label_candidates
from shopflow.warehouse import connect

PARAMS = RankerParams(num_boost_round=15)


@pytest.fixture(scope="module")
def inputs(built_home):
    settings, run_date = built_home
    with connect(settings, read_only=True) as con:
        return read_recommend_inputs(con, run_date, 90), run_date


def _train(inputs, run_date):
    cutoff = run_date - dt.timedelta(days=28)
    customers = sorted(inputs.purchases["customer_id"].unique())
    candidates = build_candidates(inputs.pairs, inputs.popularity, customers, cutoff, PARAMS)
    return Ranker.train(label_candidates(candidates, inputs.purchases, cutoff), PARAMS)


@pytest.fixture(scope="module")
def ranker(inputs):
    data, run_date = inputs
    return _train(data, run_date)


def test_features_at_a_cutoff_see_nothing_after_it(inputs):
    data, run_date = inputs
    cutoff = run_date - dt.timedelta(days=28)
    pairs = data.pairs[data.pairs["cutoff_date"].astype(str) == cutoff.isoformat()]
    assert not pairs.empty
    # recency is measured from the cutoff: a purchase after it would make it negative
    assert (pairs["pair_recency_days"] >= 0).all()
    last_seen = (
        data.purchases[data.purchases["ordered_date"].astype(str) <= cutoff.isoformat()]
        .groupby(["customer_id", "product_id"])
        .size()
    )
    recomputed = pairs.set_index(["customer_id", "product_id"])["pair_orders"]
    assert set(recomputed.index) <= set(last_seen.index)


def test_ranks_are_1_to_k_unique_and_only_sellable(inputs, ranker):
    data, run_date = inputs
    allowed = set(sorted(data.sellable)[: len(data.sellable) // 2])
    candidates = build_candidates(
        data.pairs, data.popularity, data.active_customers, run_date, PARAMS, allowed=allowed
    )
    lists = ranker.recommend(candidates)
    assert set(lists["customer_id"]) == set(data.active_customers)
    assert set(lists["product_id"]) <= allowed
    for _, group in lists.groupby("customer_id"):
        assert list(group["rank"]) == list(range(1, 11))
        assert group["product_id"].is_unique


def test_cold_start_customer_gets_k_popular_items(inputs, ranker):
    data, run_date = inputs
    candidates = build_candidates(
        data.pairs, data.popularity, ["NEVER-BOUGHT"], run_date, PARAMS, allowed=data.sellable
    )
    lists = ranker.recommend(candidates)
    assert list(lists["rank"]) == list(range(1, 11))
    assert set(lists["reason"]) == {"popular"}


def test_same_seed_same_model(inputs, tmp_path):
    data, run_date = inputs
    first = _train(data, run_date).save(tmp_path / "a")
    second = _train(data, run_date).save(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
