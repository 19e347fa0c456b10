"""Live accuracy on the tiny shop: 60 run dates of published predictions, evaluated by the
incremental live models night after night, equal a recomputation from the raw order lines
(ml.metrics), hold every observable outcome and nothing that was not yet observable."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tests.feedback.conftest import RUN_DATES
from tests.feedback.helpers import (
    build_live,
    expected_forecast_accuracy,
    expected_recommendation_outcomes,
    read_live,
)

KEYS = {
    "live_forecast_accuracy": ["run_date", "model_name", "horizon_bucket", "volume_tier", "metric"],
    "live_recommendation_outcomes": ["run_date", "model_name", "reason", "metric"],
}


def expected(settings, as_of: dt.date) -> dict[str, pd.DataFrame]:
    return {
        "live_forecast_accuracy": expected_forecast_accuracy(settings, as_of),
        "live_recommendation_outcomes": expected_recommendation_outcomes(
            settings, as_of, settings.live_window_days
        ),
    }


def assert_live_equals(settings, as_of: dt.date) -> dict[str, pd.DataFrame]:
    """The live tables equal the recomputation as of ``as_of``; returns them."""
    tables = {}
    for table, want in expected(settings, as_of).items():
        got = read_live(settings, table)
        assert not got.duplicated(KEYS[table]).any(), f"{table} has duplicate keys"
        got["run_date"] = pd.to_datetime(got["run_date"]).dt.date
        got = got.sort_values(KEYS[table]).reset_index(drop=True)
        assert len(want) > 0
        want = want.sort_values(KEYS[table]).reset_index(drop=True)
        pd.testing.assert_frame_equal(
            got.drop(columns="model_version"),
            want[got.columns.drop("model_version")],
            check_dtype=False,
            atol=1e-9,
        )
        tables[table] = got
    return tables


def test_incremental_nights_equal_recomputation_and_full_refresh(published):
    settings, last = published
    first = last - dt.timedelta(days=30)
    # a first night, a skipped stretch (caught up), a night and its rerun, the last night
    build_live(settings, first)
    night = first + dt.timedelta(days=10)
    build_live(settings, night)  # the nights between were skipped: caught up
    assert_live_equals(settings, night)
    before = {t: read_live(settings, t) for t in KEYS}
    build_live(settings, night)  # a rerun replaces, never duplicates
    for table, rows in before.items():
        pd.testing.assert_frame_equal(read_live(settings, table), rows)
    build_live(settings, last)
    tables = assert_live_equals(settings, last)

    # every observable (run date, horizon week) and every window-complete list is there
    forecast, outcomes = tables["live_forecast_accuracy"], tables["live_recommendation_outcomes"]
    run_dates = [last - dt.timedelta(days=back) for back in range(RUN_DATES, 0, -1)]
    observed = set(zip(forecast["run_date"], forecast["horizon_bucket"], strict=True))
    for run_date in run_dates:
        for week in range(4):
            bucket = f"{week * 7 + 1}-{week * 7 + 7}"
            visible = run_date + dt.timedelta(days=week * 7 + 7) <= last
            assert ((run_date, bucket) in observed) == visible, (run_date, bucket)
        scored = run_date + dt.timedelta(days=settings.live_window_days) <= last
        assert (run_date in set(outcomes["run_date"])) == scored, run_date
    assert set(forecast["model_name"]) == {"demand_forecast", "baseline_mean_28"}
    assert set(outcomes["model_name"]) == {
        "recommendations",
        "baseline_popularity_30d",
        "baseline_repurchase_frequency",
    }

    incremental = {t: read_live(settings, t) for t in KEYS}
    build_live(settings, last, full_refresh=True)
    for table, rows in incremental.items():
        full = read_live(settings, table)
        pd.testing.assert_frame_equal(
            rows.sort_values(KEYS[table]).reset_index(drop=True),
            full.sort_values(KEYS[table]).reset_index(drop=True),
        )
