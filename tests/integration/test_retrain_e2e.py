"""End to end: shopflow_retrain through the scheduler (`shopflow retrain`), in the deployment
where the nightly tests ran (warehouse built, exports published)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ml.registry import Registry
from ml.rollback import republish
from tests.ml.lifecycle_helpers import MID, WEAK, promote_trained

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retrained(nightly):
    from shopflow.dbt import build_training_features

    deployment, run_date = nightly.deployment, nightly.run_date
    settings = deployment.settings
    build_training_features(settings, run_date)
    champions = promote_trained(settings, run_date, WEAK, reason="weak champions for the test")
    republish(settings, run_date)
    # small challenger recipes keep the run short (the file is the documented override)
    (settings.models_dir / "challenger_params.json").write_text(
        json.dumps({name: dataclasses.asdict(params) for name, params in MID.items()})
    )
    done = deployment.shopflow("retrain", "--date", run_date.isoformat())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    decisions = json.loads(
        (settings.models_dir / "retrain" / run_date.isoformat() / "decisions.json").read_text()
    )
    return settings, champions, decisions, done.stdout


def test_retrain_decides_for_both_models(retrained):
    _, _, decisions, output = retrained
    assert sorted(decisions) == ["demand_forecast", "recommendations"]
    assert "retrain__" in output


def test_every_decision_is_on_record_in_the_registry(retrained):
    settings, champions, decisions, _ = retrained
    registry = Registry(settings)
    for name, decision in decisions.items():
        challenger = registry.get(name, decision["challenger"])
        assert challenger.created_by == "shopflow_retrain"
        assert challenger.status == ("champion" if decision["promote"] else "challenger")
        assert challenger.status_reason == decision["reason"]
        expected_champion = decision["challenger"] if decision["promote"] else champions[name]
        assert registry.champion(name).version == expected_champion


def test_the_better_forecaster_recipe_is_promoted(retrained):
    _, _, decisions, _ = retrained
    assert decisions["demand_forecast"]["promote"] is True


def test_a_failed_run_prints_the_task_error_and_its_url_and_exits_non_zero(nightly, retrained):
    settings = nightly.deployment.settings
    # a date before any date the warehouse is built for: the first task refuses it at once
    done = nightly.deployment.shopflow("retrain", "--date", "2025-01-02")
    assert done.returncode == 1
    assert "task build_training_sets failed:" in done.stderr
    assert (
        f"{settings.airflow_url}/dags/shopflow_retrain/runs/retrain__2025-01-02/tasks/"
        "build_training_sets" in done.stderr
    )
