"""Candidate generators on hand-made feature rows: what each proposes, and the union rules."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.recommend.baselines import item_cooccurrence
from ml.recommend.candidates import CandidateContext, generate_candidates
from ml.recommend.candidates._common import order_within_groups
from ml.recommend.candidates.bought_together import bought_together_candidates
from ml.recommend.candidates.country_popular import country_popular_candidates
from ml.recommend.candidates.trending import trending_candidates
from ml.recommend.similarity import name_neighbours
from ml.recommend.top_k import top_k_rows

CUTOFF = dt.date(2025, 3, 1)
SIZES = {
    "repurchase": 10,
    "bought_together": 10,
    "similar": 10,
    "country_popular": 10,
    "trending": 10,
    "popular": 10,
}


def _pairs(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "pair_recency_weighted"])
    return frame.assign(cutoff_date=pd.Timestamp(CUTOFF), pair_orders=1)


def _popularity(orders_30: dict[str, int], orders_7: dict[str, int] | None = None):
    orders_7 = orders_7 or {}
    return pd.DataFrame(
        {
            "cutoff_date": pd.Timestamp(CUTOFF),
            "product_id": list(orders_30),
            "orders_30": list(orders_30.values()),
            "buyers_30": list(orders_30.values()),
            "orders_365": list(orders_30.values()),
            "orders_7": [orders_7.get(p, 0) for p in orders_30],
        }
    )


def _cooccurrence(rows):
    frame = pd.DataFrame(rows, columns=["product_id", "related_product_id", "co_orders", "cosine"])
    return frame.assign(cutoff_date=pd.Timestamp(CUTOFF))


@pytest.fixture
def context():
    pairs = _pairs([("c1", "A", 2.0), ("c1", "B", 1.0), ("c2", "C", 0.5)])
    popularity = _popularity({"A": 9, "B": 8, "C": 7, "D": 6, "E": 5, "F": 1})
    cooc = _cooccurrence([("A", "D", 3, 0.5), ("B", "D", 2, 0.25), ("A", "E", 4, 0.1)])
    return CandidateContext.build(pairs, popularity, ["c1", "c2", "new"], CUTOFF, cooccurrence=cooc)


def test_bought_together_sums_seed_weight_times_cosine(context):
    rows = bought_together_candidates(context, ["c1", "c2", "new"], 10)
    assert rows.to_dict("records") == [
        {"customer_id": "c1", "product_id": "D", "score": 2.0 * 0.5 + 1.0 * 0.25},
        {"customer_id": "c1", "product_id": "E", "score": pytest.approx(2.0 * 0.1)},
    ]


def test_union_lists_each_product_once_with_the_most_personal_reason(context):
    candidates = generate_candidates(context, ["c1", "c2", "new"], SIZES)
    assert not candidates.duplicated(["customer_id", "product_id"]).any()
    c1 = candidates[candidates["customer_id"] == "c1"].set_index("product_id")
    assert c1.loc["A", "reason"] == "repurchase"  # also popular: the personal reason wins
    assert c1.loc["D", "reason"] == "bought_together"
    assert c1.loc["A", "popular_rank"] == 1.0 and c1.loc["A", "repurchase_rank"] == 1.0
    assert c1.loc["D", "repurchase_rank"] == 9999.0
    assert c1.loc["D", "n_sources"] == 2  # bought together and popular


def test_products_outside_allowed_are_never_proposed():
    pairs = _pairs([("c1", "A", 2.0), ("c1", "POST", 5.0)])
    popularity = _popularity({"A": 3, "POST": 100, "D": 2})
    cooc = _cooccurrence([("A", "POST", 5, 0.9), ("A", "D", 1, 0.1)])
    context = CandidateContext.build(
        pairs, popularity, ["c1"], CUTOFF, {"A", "D"}, cooccurrence=cooc
    )
    candidates = generate_candidates(context, ["c1"], SIZES)
    assert sorted(candidates["product_id"]) == ["A", "D"]


def test_products_unsold_in_the_365_days_are_never_proposed():
    pairs = _pairs([("c1", "A", 2.0)])
    context = CandidateContext.build(pairs, _popularity({"B": 3}), ["c1"], CUTOFF)
    assert sorted(generate_candidates(context, ["c1"], SIZES)["product_id"]) == ["B"]


def test_cold_start_customer_gets_the_popular_list(context):
    candidates = generate_candidates(context, ["new"], SIZES)
    assert sorted(candidates["product_id"]) == ["A", "B", "C", "D", "E", "F"]
    assert set(candidates["reason"]) == {"popular"}


def test_country_popular_counts_distinct_recent_buyers_of_the_country():
    purchases = pd.DataFrame(
        {
            "customer_id": ["u1", "u1", "u2", "f1", "u3", "u1"],
            "product_id": ["A", "A", "A", "B", "C", "D"],
            "ordered_date": pd.to_datetime(
                # u3's C is older than 90 days; u1's D is after the cutoff
                ["2025-02-01", "2025-02-02", "2025-02-03", "2025-02-01", "2024-11-01", "2025-03-02"]
            ),
        }
    )
    countries = {"u1": "UK", "u2": "UK", "u3": "UK", "f1": "FR", "me": "UK"}
    context = CandidateContext.build(
        _pairs([]),
        _popularity({"A": 1, "B": 1, "C": 1, "D": 1}),
        ["me", "nowhere"],
        CUTOFF,
        purchases=purchases,
        countries=countries,
    )
    rows = country_popular_candidates(context, ["me", "nowhere"], 10)
    assert rows.to_dict("records") == [{"customer_id": "me", "product_id": "A", "score": 2.0}]


def test_a_one_country_shop_has_no_country_source_beside_popular():
    purchases = pd.DataFrame(
        {
            "customer_id": ["u1", "u2"],
            "product_id": ["A", "A"],
            "ordered_date": pd.to_datetime(["2025-02-01", "2025-02-03"]),
        }
    )
    context = CandidateContext.build(
        _pairs([]),
        _popularity({"A": 2, "B": 1}),
        ["me"],
        CUTOFF,
        purchases=purchases,
        countries={"u1": "BR", "u2": "BR", "me": "BR"},
    )
    assert country_popular_candidates(context, ["me"], 10).empty
    reasons = set(generate_candidates(context, ["me"], SIZES)["reason"])
    assert "popular" in reasons and "country_popular" not in reasons


def test_trending_ranks_the_excess_of_the_last_week_over_the_month_pace():
    popularity = _popularity({"A": 30, "B": 30, "C": 3}, orders_7={"A": 7, "B": 20, "C": 3})
    context = CandidateContext.build(_pairs([]), popularity, ["c1"], CUTOFF)
    rows = trending_candidates(context, ["c1"], 10)
    # A runs at its monthly pace (7 = 30 * 7 / 30): not trending
    assert list(rows["product_id"]) == ["B", "C"]
    assert rows["score"].tolist() == pytest.approx([20 - 7.0, 3 - 0.7])


def test_name_neighbours_pair_products_sharing_words():
    names = pd.DataFrame(
        {
            "product_id": ["1", "2", "3", "4"],
            "product_name": ["RED HEART MUG", "BLUE HEART MUG", "GARDEN SPADE", "4"],
        }
    )
    neighbours = name_neighbours(names, n=5)
    assert set(zip(neighbours["product_id"], neighbours["related_product_id"], strict=True)) == {
        ("1", "2"),
        ("2", "1"),
    }
    assert neighbours["similarity"].between(0.2, 1.0).all()


def test_item_cooccurrence_baseline_sums_co_orders_over_the_history():
    pairs = _pairs([("c1", "A", 1.0), ("c1", "B", 1.0)])
    popularity = _popularity({"A": 9, "B": 8, "D": 1, "E": 1, "P": 20})
    cooc = _cooccurrence([("A", "D", 3, 0.1), ("B", "D", 2, 0.1), ("A", "E", 4, 0.1)])
    lists = item_cooccurrence(pairs, popularity, ["c1"], CUTOFF, 3, cooccurrence=cooc)
    # D: 3 + 2 orders, E: 4, then the most popular product fills the list
    assert list(lists["product_id"]) == ["D", "E", "P"]
    assert list(lists["rank"]) == [1, 2, 3]


def test_ordering_within_groups_equals_lexsort_with_ties_in_input_order():
    rng = np.random.default_rng(5)
    for groups_count in (7, 40_000):  # 16-bit group numbers and wider ones
        groups = rng.integers(0, groups_count, 5_000)
        scores = rng.integers(0, 4, 5_000).astype(float)  # many ties
        expected = np.lexsort((np.arange(5_000), -scores, groups))
        np.testing.assert_array_equal(order_within_groups(groups, scores), expected)


def testtop_k_rows_equal_a_lexsort_whatever_the_row_order():
    rng = np.random.default_rng(9)
    customers = rng.integers(0, 30, 2_000)
    products = rng.permutation(2_000)  # one row per (customer, product)
    scores = rng.integers(0, 5, 2_000).astype(float)
    order = np.lexsort((products, -scores, customers))
    grouped = customers[order]
    rank = np.arange(len(order)) - np.searchsorted(grouped, grouped, side="left") + 1
    for rows in (np.arange(2_000), np.lexsort((products, customers))):
        keep, ranks = top_k_rows(customers[rows], products[rows], scores[rows], 3)
        np.testing.assert_array_equal(rows[keep], order[rank <= 3])
        np.testing.assert_array_equal(ranks, rank[rank <= 3])
