"""End to end: shopflow_retrain through Airflow (`airflow dags test`) on the tiny shop."""

from __future__ import annotations

import dataclasses
import json

import pytest

from shopflow.airflow_runner import run_dag
from shopflow.jobs.rollback import republish
from shopflow.registry import Registry
from tests.ml.lifecycle_helpers import MID, WEAK, copy_home, promote_trained

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retrained(built_home, tmp_path_factory):
    settings, run_date = copy_home(built_home, tmp_path_factory.mktemp("retrain_e2e"))
    champions = promote_trained(settings, run_date, WEAK, reason="weak champions for the test")
    republish(settings, run_date)
    # small challenger recipes keep the run short (the file is the documented override)
    (settings.models_dir / "challenger_params.json").write_text(
        json.dumps({name: dataclasses.asdict(params) for name, params in MID.items()})
    )
    run_dag(settings, "shopflow_retrain", run_date)
    decisions = json.loads(
        (settings.models_dir / "retrain" / run_date.isoformat() / "decisions.json").read_text()
    )
    return settings, champions, decisions


def test_retrain_decides_for_both_models(retrained):
    _, _, decisions = retrained
    assert sorted(decisions) == ["demand_forecast", "recommendations"]


def test_every_decision_is_on_record_in_the_registry(retrained):
    settings, champions, decisions = retrained
    registry = Registry(settings)
    for name, decision in decisions.items():
        challenger = registry.get(name, decision["challenger"])
        assert challenger.created_by == "shopflow_retrain"
        assert challenger.status == ("champion" if decision["promote"] else "challenger")
        assert challenger.status_reason == decision["reason"]
        expected_champion = decision["challenger"] if decision["promote"] else champions[name]
        assert registry.champion(name).version == expected_champion


def test_the_better_forecaster_recipe_is_promoted(retrained):
    _, _, decisions = retrained
    assert decisions["demand_forecast"]["promote"] is True
