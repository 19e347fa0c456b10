from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml.recommend import candidate_features
from ml.recommend.backtest import customers_buying_after, training_frame
from ml.recommend.baselines import popularity_30
from ml.recommend.candidate_features import FEATURES, candidates_for
from ml.recommend.ranker import Ranker, RankerParams, label_candidates
from ml.recommend.top_k import recommend_for
from shopflow.dbt import training_cutoff_offsets
from shopflow.jobs.inputs import read_recommend_inputs
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
    candidates = candidates_for(inputs, customers, cutoff, PARAMS)
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


def test_candidates_at_a_cutoff_do_not_change_when_later_purchases_do(inputs):
    data, run_date = inputs
    cutoff = run_date - dt.timedelta(days=28)
    customers = sorted(data.purchases["customer_id"].unique())[:80]
    before = data.purchases[pd.to_datetime(data.purchases["ordered_date"]) <= pd.Timestamp(cutoff)]
    truncated = type(data)(**{**data.__dict__, "purchases": before})
    with_future = candidates_for(data, customers, cutoff, PARAMS)
    without_future = candidates_for(truncated, customers, cutoff, PARAMS)
    assert set(with_future["reason"]) >= {"repurchase", "country_popular"}
    pd.testing.assert_frame_equal(with_future, without_future)


def test_ranks_are_1_to_k_unique_and_only_sellable(inputs, ranker):
    data, run_date = inputs
    allowed = set(sorted(data.sellable)[: len(data.sellable) // 2])
    candidates = candidates_for(data, data.active_customers, run_date, PARAMS, allowed=allowed)
    lists = ranker.recommend(candidates)
    assert set(lists["customer_id"]) == set(data.active_customers)
    assert set(lists["product_id"]) <= allowed
    for _, group in lists.groupby("customer_id"):
        assert list(group["rank"]) == list(range(1, 11))
        assert group["product_id"].is_unique


def test_non_product_codes_are_never_recommended(inputs, ranker):
    data, run_date = inputs
    customer = data.active_customers[0]
    # POST as the customer's strongest past product and the most popular product of the month
    post_pair = (
        data.pairs[data.pairs["customer_id"] == customer]
        .head(1)
        .assign(product_id="POST", pair_orders=99, pair_recency_weighted=99.0, pair_recency_days=0)
    )
    post_popular = data.popularity.head(1).assign(
        product_id="POST", cutoff_date=pd.Timestamp(run_date), orders_30=10_000, orders_7=5_000
    )
    pairs = pd.concat([data.pairs, post_pair], ignore_index=True)
    popularity = pd.concat([data.popularity, post_popular], ignore_index=True)
    tampered = type(data)(**{**data.__dict__, "pairs": pairs, "popularity": popularity})
    candidates = candidates_for(tampered, [customer], run_date, PARAMS, allowed=data.sellable)
    assert "POST" not in set(candidates["product_id"])
    lists = ranker.recommend(candidates)
    assert len(lists) == 10 and "POST" not in set(lists["product_id"])


def test_cold_start_customer_gets_k_items(inputs, ranker):
    data, run_date = inputs
    candidates = candidates_for(data, ["NEVER-BOUGHT"], run_date, PARAMS, allowed=data.sellable)
    lists = ranker.recommend(candidates)
    assert list(lists["rank"]) == list(range(1, 11))
    assert lists["product_id"].is_unique
    assert set(lists["reason"]) <= {"popular", "trending"}


def test_a_customer_without_history_gets_the_popularity_list(inputs, ranker):
    data, run_date = inputs
    country = pd.Series(data.countries).mode()[0]
    with_country = {**data.countries, "NEW-IN-UK": country}
    newcomer = type(data)(**{**data.__dict__, "countries": with_country})
    candidates = candidates_for(newcomer, ["NEW-IN-UK"], run_date, PARAMS, allowed=data.sellable)
    # the ranker alone would pick among country, trending and popular candidates
    assert {"country_popular", "popular"} <= set(candidates["reason"])
    lists = ranker.recommend(candidates)
    expected = popularity_30(
        data.pairs, data.popularity, ["NEW-IN-UK"], run_date, 10, data.sellable
    )
    assert list(lists["product_id"]) == list(expected["product_id"])
    assert set(lists["reason"]) == {"popular"}
    assert (lists["score"].diff().dropna() < 0).all()


def test_candidate_features_are_finite_numbers(inputs):
    data, run_date = inputs
    candidates = candidates_for(data, data.active_customers[:50], run_date, PARAMS)
    assert list(candidates.columns) == ["customer_id", "product_id", "reason", *FEATURES]
    assert not candidates.duplicated(["customer_id", "product_id"]).any()
    assert candidates[FEATURES].notna().all().all()


def test_same_seed_same_model(inputs, tmp_path):
    data, run_date = inputs
    first = _train(data, run_date).save(tmp_path / "a")
    second = _train(data, run_date).save(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_chunked_recommendations_equal_one_call_with_every_customer(inputs, ranker, monkeypatch):
    data, run_date = inputs
    customers = data.active_customers
    whole = ranker.recommend(candidates_for(data, customers, run_date, PARAMS, data.sellable), 10)
    monkeypatch.setattr(candidate_features, "CUSTOMER_CHUNK", 7)
    assert len(list(candidate_features.customer_chunks(customers))) == -(-len(customers) // 7) > 3
    top, deep = recommend_for(ranker, data, customers, run_date, (10, 30), allowed=data.sellable)
    pd.testing.assert_frame_equal(top, whole)
    assert (deep.groupby("customer_id")["rank"].max() > 10).any()


def test_training_samples_at_most_the_query_groups_asked_per_cutoff(inputs):
    data, run_date = inputs
    cutoff = run_date - dt.timedelta(days=28)
    buyers = customers_buying_after(data.purchases, cutoff)
    capped = RankerParams(max_query_groups_per_cutoff=5, negatives_per_customer=3)
    frame = training_frame(data, [cutoff], capped)
    groups = frame["customer_id"].str.removesuffix(f"@{cutoff}").unique()
    assert len(buyers) > 5 and len(groups) <= 5 and set(groups) <= set(buyers)
    # every group keeps its positives and at most 3 negatives
    per_group = frame.groupby("customer_id")["label"].agg(["sum", "size"])
    assert (per_group["sum"] > 0).all() and (per_group["size"] - per_group["sum"] <= 3).all()
    same_again = training_frame(data, [cutoff], capped)
    pd.testing.assert_frame_equal(frame, same_again)


def test_scoring_reads_only_the_run_date_cutoff_and_the_recent_purchases(built_home, inputs):
    settings, run_date = built_home
    training, _ = inputs
    with connect(settings, read_only=True) as con:
        scoring = read_recommend_inputs(con, run_date, 90, scoring=True)
    for frame in (scoring.pairs, scoring.popularity, scoring.cooccurrence):
        assert set(pd.to_datetime(frame["cutoff_date"])) == {pd.Timestamp(run_date)}
    # training reads every cutoff dbt built: the scoring one and each training offset that
    # falls within the shop's history (a cutoff before the first sale has no rows)
    first_sale = pd.to_datetime(training.purchases["ordered_date"]).min()
    expected = {
        pd.Timestamp(run_date - dt.timedelta(days=days))
        for days in [0, *training_cutoff_offsets(settings)]
    }
    expected = {cutoff for cutoff in expected if cutoff >= first_sale}
    assert len(expected) >= 3
    assert set(pd.to_datetime(training.pairs["cutoff_date"])) == expected
    oldest = pd.to_datetime(scoring.purchases["ordered_date"]).min()
    assert oldest > pd.Timestamp(run_date - dt.timedelta(days=90))
    # the scoring cutoff's rows are the same whichever way they are read
    at_run_date = training.pairs[
        pd.to_datetime(training.pairs["cutoff_date"]) == pd.Timestamp(run_date)
    ]
    pd.testing.assert_frame_equal(at_run_date.reset_index(drop=True), scoring.pairs)


def test_training_reads_a_fixed_sample_of_customers_on_large_shops(built_home):
    settings, run_date = built_home
    with connect(settings, read_only=True) as con:
        whole = read_recommend_inputs(con, run_date, 90)
        first = read_recommend_inputs(con, run_date, 90, max_customers=25)
        again = read_recommend_inputs(con, run_date, 90, max_customers=25)
        roomy = read_recommend_inputs(con, run_date, 90, max_customers=10**9)
    sampled = set(first.purchases["customer_id"])
    assert 0 < len(sampled) <= 25 < whole.purchases["customer_id"].nunique()
    assert set(first.pairs["customer_id"]) <= sampled
    pd.testing.assert_frame_equal(first.pairs, again.pairs)
    # every row of a sampled customer is read, and product-level inputs are not sampled
    pd.testing.assert_frame_equal(
        first.pairs,
        whole.pairs[whole.pairs["customer_id"].isin(sampled)].reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(first.popularity, whole.popularity)
    # a shop within the limit is read whole
    pd.testing.assert_frame_equal(roomy.pairs, whole.pairs)
    assert len(roomy.purchases) == len(whole.purchases)
