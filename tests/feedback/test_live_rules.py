"""The rollback rule on live outcomes, by hand: how many evaluations in a row lost."""

from __future__ import annotations

import pandas as pd

from shopflow.jobs.feedback import worse_streak


def frame(model, baseline):
    return pd.DataFrame({"model": model, "best_baseline": baseline})


def test_lower_is_better_counts_the_latest_losses_beyond_the_margin():
    # WAPE: 1.2 > 1.0 * 1.1 loses; 1.05 is within the 10 % margin and breaks the streak
    comparison = frame([1.2, 1.05, 1.2, 1.3], [1.0, 1.0, 1.0, 1.0])
    assert worse_streak(comparison, lower_is_better=True, margin=0.1) == 2
    assert worse_streak(comparison, lower_is_better=True, margin=0.25) == 1
    assert worse_streak(comparison, lower_is_better=True, margin=0.5) == 0


def test_higher_is_better_and_an_empty_history():
    # NDCG: 0.2 < 0.3 * 0.9 loses; the last evaluation won, so no streak
    assert worse_streak(frame([0.2, 0.2, 0.3], [0.3, 0.3, 0.3]), False, 0.1) == 0
    assert worse_streak(frame([0.3, 0.2, 0.2], [0.3, 0.3, 0.3]), False, 0.1) == 2
    assert worse_streak(frame([], []), True, 0.1) == 0
