"""Automatic rollback after publish, and refusing a corrupted artifact: real dbt, XGBoost,
registry and publishing on the tiny shop."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import duckdb
import pytest
import xgboost as xgb

from ml.forecast.model import FEATURES, DemandForecaster, build_training_frame
from ml.postpublish import PostPublishPolicy
from shopflow import snapshots
from shopflow.dbt import build_warehouse
from shopflow.jobs.inputs import read_forecast_inputs
from shopflow.jobs.nightly import InvalidPredictionsError, score_forecast, score_recommendations
from shopflow.jobs.rollback import (
    PostPublishCheckError,
    check_after_publish,
    publish_checked,
    republish,
)
from shopflow.quality import validate_predictions
from shopflow.registry import ArtifactIntegrityError, Registry
from shopflow.warehouse import connect
from tests.ml.lifecycle_helpers import MID, WEAK, copy_home, promote_trained

FORECAST = "demand_forecast"


def _register_nan_forecaster(settings, cutoff: dt.date) -> str:
    """A real forecaster whose mean booster predicts NaN (its base score is NaN)."""
    params = WEAK[FORECAST]
    with connect(settings, read_only=True) as con:
        feat = read_forecast_inputs(con, cutoff).feat
    model = DemandForecaster.train(build_training_frame(feat, cutoff, params), params)
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir) as tmp:
        as_json = Path(tmp) / "mean.json"
        model.mean_booster.save_model(as_json)
        spec = json.loads(as_json.read_text())
        spec["learner"]["learner_model_param"]["base_score"] = "NaN"
        as_json.write_text(json.dumps(spec))
        broken = xgb.Booster()
        broken.load_model(as_json)
        staged = Path(tmp) / "artifact"
        DemandForecaster(broken, model.quantile_booster, params).save(staged)
        version = Registry(settings).register(
            FORECAST,
            staged,
            cutoff_date=cutoff,
            params=params.__dict__,
            feature_schema=FEATURES,
            metrics={},
            data_fingerprint={},
            created_by="test: NaN challenger",
        )
    return version.version


def _forecast_rows(settings, run_date):
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        return con.execute(
            "select model_version, count(*), count(*) filter (where isnan(units_mean)) "
            "from exports.demand_forecast where run_date = ? group by 1",
            [run_date],
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def nan_night(built_home, tmp_path_factory):
    """Night D: a champion publishes. Night D+1: a newly promoted challenger predicts NaN, so
    scoring fails and nothing is published; then the nightly's last task, check_published,
    runs (it runs whatever happened upstream)."""
    settings, day = copy_home(built_home, tmp_path_factory.mktemp("rollback"))
    good = promote_trained(settings, day, {FORECAST: WEAK[FORECAST]}, reason="yesterday's")
    promote_trained(settings, day, {"recommendations": WEAK["recommendations"]}, reason="ranker")
    republish(settings, day)
    next_day = day + dt.timedelta(days=1)
    build_warehouse(settings, next_day)
    bad = _register_nan_forecaster(settings, next_day)
    Registry(settings).promote(FORECAST, bad, actor="test", reason="newly promoted (NaN)")
    with pytest.raises(InvalidPredictionsError, match="NaN or infinite values in units_mean"):
        score_forecast(settings, next_day)  # scoring refuses to write NaN
    score_recommendations(settings, next_day)
    published_bad = _forecast_rows(settings, next_day)
    with pytest.raises(PostPublishCheckError) as failure:
        check_after_publish(settings, next_day)
    return {
        "settings": settings,
        "day": next_day,
        "good": good[FORECAST],
        "bad": bad,
        "published_bad": published_bad,
        "message": str(failure.value),
    }


def test_nothing_was_published_with_the_nan_challenger(nan_night):
    assert nan_night["published_bad"] == []


def test_nan_challenger_is_rolled_back_and_yesterdays_champion_serves_again(nan_night):
    registry = Registry(nan_night["settings"])
    assert registry.champion(FORECAST).version == nan_night["good"]
    bad = registry.get(FORECAST, nan_night["bad"])
    assert bad.status == "rolled_back"
    assert bad.status_reason == (
        f"post-publish checks for {nan_night['day']} failed: scored: 0 rows scored for "
        f"{nan_night['day']} (scoring with the new champion failed if 0: see the score task's log)"
    )
    [(version, rows, nans)] = _forecast_rows(nan_night["settings"], nan_night["day"])
    assert (version, nans) == (nan_night["good"], 0)
    assert rows > 0


def test_rollback_message_tells_on_call_what_happened(nan_night):
    message = nan_night["message"]
    assert f"It was marked rolled_back and {nan_night['good']} (the previous champion)" in message
    assert f"The exports for {nan_night['day']} were rebuilt" in message
    assert "runbook 'The model was rolled back last night'" in message


def test_a_second_check_after_the_rollback_passes(nan_night):
    result = check_after_publish(nan_night["settings"], nan_night["day"])
    assert result["checked"] == []


def test_a_corrupted_champion_artifact_is_refused_for_scoring(nan_night):
    settings = nan_night["settings"]
    champion = Registry(settings).champion(FORECAST)
    (champion.artifact_dir / "quantiles.ubj").write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="refusing to score with it"):
        score_forecast(settings, nan_night["day"])


@pytest.fixture(scope="module")
def rejected_night(built_home, tmp_path_factory, monkeypatch_module):
    """Night D published by weak champions; night D+1 a new forecaster whose outputs fail the
    checks (a strict shift bound), published through the nightly's publish step. Every swap
    of ``exports`` is watched: which forecast versions became visible for D+1."""
    settings, day = copy_home(built_home, tmp_path_factory.mktemp("rejected"))
    weak = promote_trained(settings, day, WEAK, reason="yesterday's")
    republish(settings, day)
    next_day = day + dt.timedelta(days=1)
    build_warehouse(settings, next_day)
    new = promote_trained(settings, next_day, {FORECAST: MID[FORECAST]}, reason="new")
    score_forecast(settings, next_day)
    score_recommendations(settings, next_day)
    validate_predictions(settings, next_day)
    visible_versions = []
    swap = snapshots._point_exports_at

    def watched(settings_, number):
        swap(settings_, number)
        visible_versions.extend(v for v, _, _ in _forecast_rows(settings_, next_day))

    monkeypatch_module.setattr(snapshots, "_point_exports_at", watched)
    strict = PostPublishPolicy(forecast_total_ratio=1.0000001)
    with pytest.raises(PostPublishCheckError) as failure:
        publish_checked(settings, next_day, strict)
    return {
        "settings": settings,
        "day": next_day,
        "weak": weak[FORECAST],
        "new": new[FORECAST],
        "visible": visible_versions,
        "message": str(failure.value),
    }


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_a_rejected_champion_is_never_visible(rejected_night):
    assert rejected_night["new"] not in rejected_night["visible"]
    assert rejected_night["visible"] == [rejected_night["weak"]]


def test_a_rejected_champion_is_rolled_back_and_the_date_published_with_the_previous(
    rejected_night,
):
    registry = Registry(rejected_night["settings"])
    assert registry.champion(FORECAST).version == rejected_night["weak"]
    assert registry.get(FORECAST, rejected_night["new"]).status == "rolled_back"
    [(version, rows, nans)] = _forecast_rows(rejected_night["settings"], rejected_night["day"])
    assert (version, nans) == (rejected_night["weak"], 0) and rows > 0
    message = rejected_night["message"]
    assert "checked before publishing and never shown" in message
    assert f"The exports for {rejected_night['day']} were rebuilt" in message
