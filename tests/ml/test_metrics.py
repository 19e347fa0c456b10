from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml import metrics


def test_recall_divides_by_min_of_k_and_bought():
    assert metrics.recall_at_k(["a", "b", "c"], {"a", "c", "x", "y"}, k=2) == 0.5
    # 2 hits of 3 bought, k=10 -> 2/3
    assert metrics.recall_at_k(["a", "b", "c"], {"a", "c", "z"}, k=10) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(["a"], set(), k=10) == 0.0


def test_ndcg_binary_gain_by_hand():
    # hits at positions 1 and 3; ideal: positions 1 and 2
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert metrics.ndcg_at_k(["a", "b", "c"], {"a", "c"}, k=10) == pytest.approx(dcg / ideal)
    assert metrics.ndcg_at_k(["a", "c", "b"], {"a", "c"}, k=10) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(["b"], {"a"}, k=10) == 0.0


def test_ranking_metrics_average_over_buyers_only():
    recs = {"u1": ["a", "b"], "u2": ["c"]}
    bought = {"u1": {"a"}, "u2": {"x"}, "u3": set(), "u4": {"a"}}
    result = metrics.ranking_metrics(recs, bought, k=10)
    # u1: recall 1, u2: 0, u4 (no list): 0 ; u3 excluded
    assert result["customers"] == 3
    assert result["recall_at_k"] == pytest.approx(1 / 3)
    assert result["ndcg_at_k"] == pytest.approx(1 / 3)


def _frame():
    # one product, horizons 1..8: weeks are h1-7 and h8
    return pd.DataFrame(
        {
            "product_id": ["p"] * 8,
            "horizon_days": list(range(1, 9)),
            "y": [1, 0, 0, 2, 0, 0, 1, 4],
            "units_mean": [0.5] * 8,
            "units_p10": [0.0] * 8,
            "units_p50": [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0],
            "units_p90": [2.0] * 8,
        }
    )


def test_weekly_wape_by_hand():
    # week 1: y=4, yhat=3.5 -> 0.5 ; week 2: y=4, yhat=0.5 -> 3.5 ; total y 8
    assert metrics.weekly_wape(_frame()) == pytest.approx(4.0 / 8.0)


def test_bias_by_hand():
    assert metrics.bias(_frame()) == pytest.approx((4.0 - 8.0) / 8.0)


def test_pinball_by_hand():
    frame = _frame()
    y = frame["y"].to_numpy(float)
    p10 = np.where(y > 0, 0.1 * y, 0.0).sum()  # q=0 below every y
    p50 = sum(
        0.5 * (yy - q) if yy >= q else 0.5 * (q - yy)
        for yy, q in zip(y, frame["units_p50"], strict=True)
    )
    p90 = sum(0.9 * (yy - 2) if yy >= 2 else 0.1 * (2 - yy) for yy in y)
    assert metrics.scaled_pinball(frame) == pytest.approx((p10 + p50 + p90) / 3 / 8)


def test_coverage_counts_inside_p10_p90():
    # y=4 is outside [0, 2]; the other 7 inside
    assert metrics.coverage(_frame()) == pytest.approx(7 / 8)


def test_tail_misses_count_each_side_of_the_interval():
    frame = _frame().assign(units_p10=[0.0, 0.0, 0.5, 2.5, 0.0, 0.0, 0.0, 0.0])
    # below p10: y=0 < 0.5 and y=2 < 2.5; above p90=2: y=4
    assert metrics.below_p10(frame) == pytest.approx(2 / 8)
    assert metrics.above_p90(frame) == pytest.approx(1 / 8)
    assert metrics.coverage(frame) == pytest.approx(1 - 2 / 8 - 1 / 8)


def test_ranking_metrics_frame_equals_the_per_customer_definition():
    rng = np.random.default_rng(3)
    lists, bought = [], []
    for c in range(60):
        ranked = rng.permutation(40)[: rng.integers(0, 25)]
        lists += [(f"c{c}", r + 1, f"p{p}") for r, p in enumerate(ranked)]
        bought += [(f"c{c}", f"p{p}") for p in rng.integers(0, 40, rng.integers(0, 15))]
    lists = pd.DataFrame(lists, columns=["customer_id", "rank", "product_id"])
    bought = pd.DataFrame(bought, columns=["customer_id", "product_id"])
    recommended = {
        c: list(g.sort_values("rank")["product_id"]) for c, g in lists.groupby("customer_id")
    }
    per_customer = {c: set(g["product_id"]) for c, g in bought.groupby("customer_id")}
    for k in (1, 5, 10):
        expected = metrics.ranking_metrics(recommended, per_customer, k)
        result = metrics.ranking_metrics_frame(lists, bought, k)
        assert result["customers"] == expected["customers"] > 50
        assert result["recall_at_k"] == pytest.approx(expected["recall_at_k"], rel=1e-12)
        assert result["ndcg_at_k"] == pytest.approx(expected["ndcg_at_k"], rel=1e-12)
