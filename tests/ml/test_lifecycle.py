"""Champion/challenger retraining: the policy as a pure function, then the real path (dbt-built
tiny shop, real XGBoost, registry, publish) for promotion, keeping and manual rollback."""

from __future__ import annotations

import duckdb
import pytest

from ml.forecast.baselines import BASELINES
from ml.forecast.model import ForecastParams
from ml.promotion import PromotionPolicy, decide
from shopflow.jobs.retrain import (
    build_training_sets,
    evaluate_challengers,
    promote_or_keep,
    train_challengers,
)
from shopflow.jobs.rollback import republish, rollback_model
from shopflow.registry import Registry
from tests.ml.lifecycle_helpers import MID, WEAK, copy_home, promote_trained

FORECAST = "demand_forecast"
GATE_OK = (True, "gate passed")


def _evaluation(challenger: dict, champion: dict | None = None, folds: int = 2, **extra) -> dict:
    mean = {
        "challenger": challenger,
        "baseline_seasonal_naive": {"weekly_wape": 0.80},
        "baseline_zero": {"weekly_wape": 1.0},
    }
    if champion is not None:
        mean["champion"] = champion
    return {"folds": [f"f{i}" for i in range(folds)], "mean": mean, **extra}


def _fc(wape: float, bias: float = 0.0, pinball: float = 0.3, coverage: float = 0.8) -> dict:
    return {"weekly_wape": wape, "bias": bias, "pinball": pinball, "coverage_p10_p90": coverage}


def test_decide_promotes_a_challenger_better_by_the_margin():
    decision = decide(FORECAST, "new", "old", _evaluation(_fc(0.60), _fc(0.70)), GATE_OK)
    assert decision.promote is True
    assert decision.reason.startswith("weekly_wape 0.6000 vs champion 0.7000 (mean of 2 folds)")


def test_decide_keeps_a_challenger_within_the_margin():
    decision = decide(FORECAST, "new", "old", _evaluation(_fc(0.695), _fc(0.70)), GATE_OK)
    assert decision.promote is False
    assert decision.reason == (
        "weekly_wape 0.6950 vs champion 0.7000: does not beat it by the 1% margin (mean of 2 folds)"
    )


def test_decide_keeps_a_challenger_that_regresses_on_a_secondary_metric():
    evaluation = _evaluation(_fc(0.60, pinball=0.40), _fc(0.70, pinball=0.30))
    decision = decide(FORECAST, "new", "old", evaluation, GATE_OK)
    assert decision.promote is False
    assert decision.reason == (
        "weekly_wape improves (0.6000 vs 0.7000) but pinball regresses: 0.4000 vs champion "
        "0.3000 (tolerance 0.02)"
    )


def test_decide_keeps_a_challenger_that_loses_to_a_baseline():
    decision = decide(FORECAST, "new", "old", _evaluation(_fc(0.85), _fc(0.75)), GATE_OK)
    assert (decision.promote, decision.baseline) == (False, None)
    assert decision.reason == "weekly_wape 0.8500 does not beat baseline_seasonal_naive 0.8000"


def test_decide_serves_the_baseline_when_challenger_and_champion_both_lose_to_it():
    decision = decide(FORECAST, "new", "old", _evaluation(_fc(0.85), _fc(0.95)), GATE_OK)
    assert (decision.promote, decision.baseline) == (False, "baseline_seasonal_naive")
    assert decision.reason == (
        "weekly_wape 0.8500 does not beat baseline_seasonal_naive 0.8000; champion old 0.9500 "
        "also loses to baseline_seasonal_naive 0.8000: baseline_seasonal_naive serves"
    )


def test_decide_keeps_a_challenger_trained_on_data_that_failed_the_gate():
    gate = (False, "the nightly run for 2025-05-30 has not published")
    decision = decide(FORECAST, "new", "old", _evaluation(_fc(0.5), _fc(0.7)), gate)
    assert decision.promote is False
    assert decision.reason == (
        "training data did not pass the quality gate: the nightly run for 2025-05-30 has "
        "not published"
    )


def test_decide_needs_enough_folds():
    decision = decide(FORECAST, "new", "old", _evaluation(_fc(0.5), _fc(0.7), folds=1), GATE_OK)
    assert decision.promote is False
    assert decision.reason == "evaluated on 1 fold(s); the policy needs 2"


def test_decide_promotes_the_first_model_only_if_it_beats_the_baselines():
    first = decide(FORECAST, "new", None, _evaluation(_fc(0.7)), GATE_OK)
    losing = decide(FORECAST, "new", None, _evaluation(_fc(0.9)), GATE_OK)
    assert (first.promote, losing.promote) == (True, False)
    assert losing.baseline == "baseline_seasonal_naive"  # the baseline serves instead
    assert first.reason == (
        "first model; weekly_wape 0.7000 beats every baseline (mean of 2 folds)"
    )


def test_decide_refreshes_a_same_recipe_tie_only_when_the_policy_allows_it():
    evaluation = _evaluation(_fc(0.7), _fc(0.7), same_recipe=True)
    strict = decide(FORECAST, "new", "old", evaluation, GATE_OK)
    refresh = decide(
        FORECAST, "new", "old", evaluation, GATE_OK, PromotionPolicy(refresh_same_recipe=True)
    )
    assert (strict.promote, refresh.promote) == (False, True)


# -- the real path ---------------------------------------------------------------------------
def _retrain(settings, run_date, params):
    build_training_sets(settings, run_date)
    train_challengers(settings, run_date, params={FORECAST: params}, models=(FORECAST,))
    evaluate_challengers(settings, run_date)
    return promote_or_keep(settings, run_date)[FORECAST]


def _published_versions(settings, run_date) -> set[str]:
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        rows = con.execute(
            "select distinct model_version from exports.demand_forecast where run_date = ?",
            [run_date],
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def lifecycle(built_home, tmp_path_factory):
    """Weak champions published; a better challenger retrained and published; a worse one
    retrained; then a manual rollback. Snapshots of each stage for the tests below."""
    settings, run_date = copy_home(built_home, tmp_path_factory.mktemp("lifecycle"))
    registry = Registry(settings)
    weak = promote_trained(settings, run_date, WEAK, reason="weak champion for the test")
    republish(settings, run_date)
    better = _retrain(settings, run_date, MID[FORECAST])
    after_better = {v.version: v.status for v in registry.versions(FORECAST)}
    republish(settings, run_date)
    published_better = _published_versions(settings, run_date)
    worse = _retrain(settings, run_date, ForecastParams(num_boost_round=2, max_depth=1))
    after_worse = {v.version: v.status for v in registry.versions(FORECAST)}
    events_after_worse = registry.events(FORECAST)
    rolled = rollback_model(settings, FORECAST, actor="test", reason="manual: test rollback")
    return {
        "settings": settings,
        "run_date": run_date,
        "weak": weak,
        "better": better,
        "after_better": after_better,
        "published_better": published_better,
        "worse": worse,
        "after_worse": after_worse,
        "events_after_worse": events_after_worse,
        "rolled": rolled,
        "published_after_rollback": _published_versions(settings, run_date),
        "after_rollback": {v.version: v.status for v in registry.versions(FORECAST)},
    }


def test_a_better_challenger_is_promoted(lifecycle):
    better = lifecycle["better"]
    assert better["promote"] is True
    assert better["champion"] == lifecycle["weak"][FORECAST]
    assert lifecycle["after_better"] == {
        lifecycle["weak"][FORECAST]: "retired",
        better["challenger"]: "champion",
    }
    assert lifecycle["published_better"] == {better["challenger"]}


def test_a_worse_challenger_is_kept_with_the_reason_recorded(lifecycle):
    worse = lifecycle["worse"]
    assert worse["promote"] is False
    assert lifecycle["after_worse"][worse["challenger"]] == "challenger"
    assert lifecycle["after_worse"][lifecycle["better"]["challenger"]] == "champion"
    kept = [e for e in lifecycle["events_after_worse"] if e["action"] == "kept_challenger"]
    assert [(e["version"], e["reason"]) for e in kept] == [(worse["challenger"], worse["reason"])]
    assert "does not beat" in worse["reason"]


def test_the_fold_evaluation_is_queryable_in_sql(lifecycle):
    settings = lifecycle["settings"]
    con = duckdb.connect(str(settings.registry_path), read_only=True)
    try:
        rows = con.execute(
            "select candidate, count(distinct fold) from evaluations "
            "where challenger_version = ? and metric = 'weekly_wape' group by 1 order by 1",
            [lifecycle["better"]["challenger"]],
        ).fetchall()
    finally:
        con.close()
    # two folds + their mean, for both recipes and every baseline
    assert rows == sorted((name, 3) for name in [*BASELINES, "challenger", "champion"])


def test_manual_rollback_restores_the_previous_champion_and_republishes(lifecycle):
    weak, better = lifecycle["weak"][FORECAST], lifecycle["better"]["challenger"]
    assert lifecycle["rolled"]["rolled_back"] == better
    assert lifecycle["rolled"]["champion"] == weak
    assert lifecycle["after_rollback"][weak] == "champion"
    assert lifecycle["after_rollback"][better] == "rolled_back"
    assert lifecycle["published_after_rollback"] == {weak}
