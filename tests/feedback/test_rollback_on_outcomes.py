"""Rollback on live outcomes: on a tiny shop whose demand jumps and tastes shift at a date
(generator option regime_change), the forecaster trained before the change loses to the
28-day-mean baseline night after night and is rolled back within N nights of the evidence;
on the same shop without the change it keeps serving. In-process nights of the feedback loop:
the champion scores each run date and the baselines are recorded, the live models are built
(one dbt invocation evaluates every run date), then each night's rollback check runs on what
that night could observe."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from pathlib import Path

import pytest

from ml.forecast.model import FEATURES, DemandForecaster, ForecastParams, build_training_frame
from shopflow.generator import ShopSpec
from shopflow.jobs.feedback import record_baselines
from shopflow.jobs.inputs import read_forecast_inputs
from shopflow.jobs.nightly import score_forecast
from shopflow.registry import Registry
from shopflow.warehouse import connect
from tests.feedback.helpers import (
    build_live,
    built_shop,
    judged_comparison,
    night_settings,
    rollback_night,
)

FORECAST = "demand_forecast"
START = dt.date(2025, 1, 1)
CHANGE = START + dt.timedelta(days=150)
SPEC = ShopSpec(customers=300, products=60, days=180, start=START, seed=3)
PARAMS = ForecastParams(num_boost_round=40, max_depth=4)
FIRST_RUN = START + dt.timedelta(days=141)  # the champion serves from here on
MARGIN, EVALUATIONS = 0.15, 3


def register_forecaster(settings, cutoff: dt.date, reason: str) -> str:
    """Train a forecaster on everything up to ``cutoff`` and make it champion."""
    with connect(settings, read_only=True) as con:
        feat = read_forecast_inputs(con, cutoff).feat
    model = DemandForecaster.train(build_training_frame(feat, cutoff, PARAMS), PARAMS)
    registry = Registry(settings)
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir) as tmp:
        model.save(Path(tmp) / "artifact")
        version = registry.register(
            FORECAST,
            Path(tmp) / "artifact",
            cutoff_date=cutoff,
            params=PARAMS.__dict__,
            feature_schema=FEATURES,
            metrics={},
            data_fingerprint={},
            created_by="test",
        )
    registry.promote(FORECAST, version.version, actor="test", reason=reason)
    return version.version


def run_nights(home: Path, regime_change: dt.date | None) -> dict:
    """Serve, record and evaluate each night; returns the rollback night (or None)."""
    settings = night_settings(home, live_margin=MARGIN, live_evaluations=EVALUATIONS)
    shop = built_shop(settings, dataclasses.replace(SPEC, regime_change=regime_change))
    register_forecaster(settings, FIRST_RUN - dt.timedelta(days=11), "the one before")
    stale = register_forecaster(settings, FIRST_RUN - dt.timedelta(days=1), "champion")
    last_run = shop.last_date - dt.timedelta(days=7)
    day = FIRST_RUN
    while day <= last_run:
        score_forecast(settings, day)
        record_baselines(settings, day)
        day += dt.timedelta(days=1)
    build_live(settings, shop.last_date)
    return {
        "settings": settings,
        "stale": stale,
        "comparison": judged_comparison(settings, FORECAST, stale),
        "rolled_back_on": rollback_night(
            settings, FORECAST, FIRST_RUN + dt.timedelta(days=7), shop.last_date
        ),
    }


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    return run_nights(tmp_path_factory.mktemp("regime") / "home", CHANGE)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory):
    return run_nights(tmp_path_factory.mktemp("steady") / "home", None)


def test_the_stale_champion_is_rolled_back_within_n_nights_of_the_evidence(changed):
    comparison = changed["comparison"]
    print(comparison.to_string())
    # the evidence: the first run date after the change the champion lost on, known 7 days on
    lost = comparison[comparison["worse"] & (comparison["run_date"] >= CHANGE)]
    assert not lost.empty, "the stale champion never lost to the baseline"
    evidence_night = lost["run_date"].min() + dt.timedelta(days=7)
    rolled_back_on = changed["rolled_back_on"]
    assert rolled_back_on is not None, "the stale champion was never rolled back"
    assert evidence_night <= rolled_back_on <= evidence_night + dt.timedelta(days=EVALUATIONS)
    registry = Registry(changed["settings"])
    record = registry.get(FORECAST, changed["stale"])
    assert record.status == "rolled_back"
    assert "live accuracy" in record.status_reason and "baseline_mean_28" in record.status_reason
    assert registry.champion(FORECAST).version != changed["stale"]


def test_without_the_change_the_champion_keeps_serving(unchanged):
    print(unchanged["comparison"].to_string())
    assert unchanged["rolled_back_on"] is None
    assert Registry(unchanged["settings"]).champion(FORECAST).version == unchanged["stale"]
    # it was evaluated every night: the rule had its chance to fire
    assert len(unchanged["comparison"]) >= 20
