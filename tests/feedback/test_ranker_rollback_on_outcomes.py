"""Rollback on live outcomes, the ranker's rule: on a tiny shop whose orders jump and whose
customers' tastes are drawn anew at a date (generator options regime_change and
regime_new_habits), the ranker trained before the change is rolled back within N nights of the
first live loss; on the same shop without the change it keeps serving. In-process nights as in
test_rollback_on_outcomes.py: the champion scores each run date and the baselines are
recorded, the live models are built (one dbt invocation evaluates every run date), then each
night's rollback check runs on what that night could observe (a list is scored once its live
window is complete).

The change alone (orders x5, the categories' pulls reversed) leaves the ranker ahead of the
best baseline on every run date: customers keep their preferred categories and habitual
products, and the ranker's features are recomputed at every night's cutoff. With new tastes
its lists lead with products of the old ones, and it falls behind the 30-day popular list,
whose counts follow the new orders at once, until the customers' new purchases outweigh the
old in their histories (a couple of weeks at five times the orders). The rule runs as shipped
(the settings' default margin and evaluations)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from ml.recommend.ranker import MODEL_NAME as RANKER
from ml.recommend.ranker import RankerParams
from ml.training import train_ranker
from shopflow.dbt import PER_CUTOFF_FEATURES, run_dbt, training_cutoff_offsets
from shopflow.generator import ShopSpec
from shopflow.jobs.feedback import record_baselines
from shopflow.jobs.inputs import read_training_recommend_inputs
from shopflow.jobs.nightly import score_recommendations
from shopflow.jobs.retrain import register_trained
from shopflow.registry import Registry
from tests.feedback.helpers import (
    build_live,
    built_shop,
    judged_comparison,
    night_settings,
    rollback_night,
)

START = dt.date(2025, 1, 1)
CHANGE = START + dt.timedelta(days=150)
SPEC = ShopSpec(customers=300, products=60, days=200, start=START, seed=3)
PARAMS = RankerParams(num_boost_round=20, max_depth=3)
FIRST_RUN = START + dt.timedelta(days=141)  # the champion serves from here on


def build_cutoffs(settings, as_of: dt.date, cutoffs: list[dt.date]) -> None:
    """The per-cutoff features at every one of ``cutoffs`` in one dbt run (the warehouse is
    built as of ``as_of``; each cutoff sees only the order lines up to it)."""
    run_dbt(
        settings,
        ["run", "--select", *PER_CUTOFF_FEATURES],
        as_of,
        extra_vars={"feature_cutoff_offsets_days": sorted({(as_of - c).days for c in cutoffs})},
    )


def register_ranker(settings, cutoff: dt.date, reason: str) -> str:
    """Train a ranker on everything up to ``cutoff`` and make it champion (no holdout
    evaluation: the policy is not what is tested here)."""
    inputs = read_training_recommend_inputs(settings, cutoff)
    trained = train_ranker(inputs, cutoff, params=PARAMS, evaluation={})
    registry = Registry(settings)
    version = register_trained(registry, trained, created_by="test")
    registry.promote(RANKER, version.version, actor="test", reason=reason)
    return version.version


def run_nights(home: Path, regime_change: dt.date | None) -> dict:
    """Serve, record and evaluate each night; returns the rollback night (or None)."""
    settings = night_settings(home)
    spec = dataclasses.replace(
        SPEC, regime_change=regime_change, regime_new_habits=regime_change is not None
    )
    shop = built_shop(settings, spec)
    window = dt.timedelta(days=settings.live_window_days)
    trained_at = FIRST_RUN - dt.timedelta(days=1)
    last_run = shop.last_date - window
    run_dates = [FIRST_RUN + dt.timedelta(days=d) for d in range((last_run - FIRST_RUN).days + 1)]
    training = [trained_at - dt.timedelta(days=d) for d in training_cutoff_offsets(settings)]
    build_cutoffs(settings, shop.last_date, [c for c in training if c > START] + run_dates)
    # the one before, 28 days older: its training cutoffs are among the champion's
    register_ranker(settings, trained_at - dt.timedelta(days=28), "the one before")
    stale = register_ranker(settings, trained_at, "champion")
    for day in run_dates:
        score_recommendations(settings, day)
        record_baselines(settings, day)
    build_live(settings, shop.last_date)
    return {
        "settings": settings,
        "stale": stale,
        "window": window,
        "comparison": judged_comparison(settings, RANKER, stale),
        "rolled_back_on": rollback_night(settings, RANKER, FIRST_RUN + window, shop.last_date),
    }


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    return run_nights(tmp_path_factory.mktemp("ranker-regime") / "home", CHANGE)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory):
    return run_nights(tmp_path_factory.mktemp("ranker-steady") / "home", None)


def test_the_stale_ranker_is_rolled_back_within_n_nights_of_the_evidence(changed):
    comparison, window = changed["comparison"], changed["window"]
    settings = changed["settings"]
    print(comparison.to_string())
    # the evidence: the first list the ranker lost on, known when its window is complete
    lost = comparison[comparison["worse"]]
    assert not lost.empty, "the stale ranker never lost to the baselines"
    first_loss = lost["run_date"].min()
    assert first_loss + window >= CHANGE, "a loss before the change could be observed"
    evidence_night = first_loss + window
    rolled_back_on = changed["rolled_back_on"]
    print(f"first loss {first_loss}, evidence night {evidence_night}, rollback {rolled_back_on}")
    assert rolled_back_on is not None, "the stale ranker was never rolled back"
    last_night = evidence_night + dt.timedelta(days=settings.live_evaluations)
    assert evidence_night <= rolled_back_on <= last_night
    registry = Registry(settings)
    record = registry.get(RANKER, changed["stale"])
    assert record.status == "rolled_back"
    assert "live accuracy" in record.status_reason and "ndcg_at_k" in record.status_reason
    assert "baseline_popularity_30d" in record.status_reason
    # the evidence it names: the run dates that night could observe, each one lost
    seen = comparison[comparison["run_date"] + window <= rolled_back_on]
    streak = seen.tail(settings.live_evaluations)
    assert streak["worse"].all()
    for run_date in streak["run_date"]:
        assert f"{run_date:%Y-%m-%d}" in record.status_reason
    assert registry.champion(RANKER).version != changed["stale"]


def test_without_the_change_the_ranker_keeps_serving(unchanged):
    print(unchanged["comparison"].to_string())
    assert unchanged["rolled_back_on"] is None
    assert Registry(unchanged["settings"]).champion(RANKER).version == unchanged["stale"]
    # it was evaluated every night: the rule had its chance to fire
    assert len(unchanged["comparison"]) >= 20
