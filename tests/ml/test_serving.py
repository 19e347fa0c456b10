"""Baselines as champions: the choice among trained model, champion and baselines (pure), the
baseline artifacts, and a baseline serving through the nightly scoring on the tiny shop."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.forecast.baselines import BaselineForecaster
from ml.promotion import best_baseline, choose_first, decide, incompatibility
from ml.recommend.baselines import BaselineRecommender
from ml.serving import load_servable, registry_version, served_label
from shopflow.jobs.nightly import score_forecast, score_recommendations
from shopflow.jobs.retrain import register_baseline
from shopflow.quality import validate_predictions
from shopflow.registry import Registry
from tests.ml.lifecycle_helpers import copy_home

FORECAST, RANKER = "demand_forecast", "recommendations"
GATE_OK = (True, "gate passed")


def _results(model: float | None, **extra) -> dict:
    results = {"baseline_mean_28": {"weekly_wape": 0.80}, "baseline_zero": {"weekly_wape": 1.0}}
    if model is not None:
        results["model"] = {"weekly_wape": model}
    for name, value in extra.items():
        results[name] = {"weekly_wape": value}
    return results


def _evaluation(challenger: float, champion: float | None = None, **extra) -> dict:
    mean = _results(None)
    mean["challenger"] = {"weekly_wape": challenger}
    if champion is not None:
        mean["champion"] = {"weekly_wape": champion}
    return {"folds": ["f1", "f2"], "mean": mean, **extra}


# -- the choice (pure) -----------------------------------------------------------------------
def test_best_baseline_follows_the_direction_of_the_primary_metric():
    assert best_baseline(FORECAST, _results(0.5)) == "baseline_mean_28"  # lower WAPE wins
    ranking = {"baseline_a": {"ndcg_at_10:all": 0.1}, "baseline_b": {"ndcg_at_10:all": 0.3}}
    assert best_baseline(RANKER, ranking) == "baseline_b"  # higher NDCG wins
    assert best_baseline(FORECAST, {"model": {"weekly_wape": 0.5}}) is None


def test_the_first_champion_is_the_trained_model_only_when_it_beats_every_baseline():
    assert choose_first(FORECAST, _results(0.70))[0] == "model"
    serves, reason = choose_first(FORECAST, _results(1.30))
    assert serves == "baseline_mean_28"
    assert reason == (
        "baseline_mean_28 serves (bootstrap): the trained model's weekly_wape 1.3000 does not "
        "beat baseline_mean_28 0.8000, baseline_zero 1.0000; baseline_mean_28 0.8000 is the "
        "best of the baselines on the same holdout"
    )


def test_without_any_holdout_the_trained_model_serves_and_says_so():
    serves, reason = choose_first(FORECAST, {})
    assert serves == "model"
    assert "no holdout evaluation" in reason


def test_a_losing_challenger_without_champion_makes_the_best_baseline_serve():
    decision = decide(FORECAST, "new", None, _evaluation(0.9), GATE_OK)
    assert (decision.promote, decision.baseline) == (False, "baseline_mean_28")
    assert decision.reason.endswith("no champion yet: baseline_mean_28 serves")


def test_a_champion_that_also_loses_to_a_baseline_is_replaced_by_the_baseline():
    decision = decide(FORECAST, "new", "old", _evaluation(0.9, champion=0.85), GATE_OK)
    assert (decision.promote, decision.baseline) == (False, "baseline_mean_28")
    assert "champion old 0.8500 also loses to baseline_mean_28 0.8000" in decision.reason


def test_a_champion_that_beats_the_baselines_keeps_serving_when_the_challenger_loses():
    decision = decide(FORECAST, "new", "old", _evaluation(0.9, champion=0.7), GATE_OK)
    assert (decision.promote, decision.baseline) == (False, None)


def test_a_baseline_champion_is_replaced_only_by_a_challenger_beating_every_baseline():
    serving = {"champion_baseline": "baseline_mean_28"}
    wins = decide(FORECAST, "new", "bl", _evaluation(0.7, champion=0.8, **serving), GATE_OK)
    assert (wins.promote, wins.baseline) == (True, None)
    assert wins.reason.startswith("weekly_wape 0.7000 vs champion baseline_mean_28 0.8000")
    loses = decide(FORECAST, "new", "bl", _evaluation(0.9, champion=0.8, **serving), GATE_OK)
    assert (loses.promote, loses.baseline) == (False, None)
    assert loses.reason.endswith("baseline_mean_28 keeps serving")


# -- artifacts -------------------------------------------------------------------------------
def _daily(origin: dt.date) -> pd.DataFrame:
    """Product a sells 2 units every day; b sold once, 10 days before the origin; c never
    within 90 days (not in the population)."""
    days = pd.date_range(end=pd.Timestamp(origin), periods=35, freq="D")
    rows = []
    for i, day in enumerate(days):
        since_b = (len(days) - 1 - i) - 10
        rows.append(("a", day, 2.0, 0.0))
        rows.append(("b", day, 3.0 if since_b == 0 else 0.0, since_b if since_b >= 0 else 40.0))
        rows.append(("c", day, 0.0, 200.0))
    return pd.DataFrame(
        rows, columns=["product_id", "demand_date", "units_sold", "days_since_last_sale"]
    )


def test_a_baseline_forecaster_forecasts_the_active_products_like_a_model(tmp_path):
    origin = dt.date(2025, 3, 31)
    model = BaselineForecaster("baseline_mean_28", reason="r", metrics={"model": {"x": 1.0}})
    forecast = model.forecast(_daily(origin), origin)
    assert sorted(forecast["product_id"].unique()) == ["a", "b"]
    assert forecast.groupby("product_id")["horizon_days"].apply(sorted).map(len).tolist() == [
        28,
        28,
    ]
    assert forecast["forecast_date"].min() == origin + dt.timedelta(days=1)
    a = forecast[forecast["product_id"] == "a"]
    assert np.allclose(a["units_mean"], 2.0)
    b = forecast[forecast["product_id"] == "b"]
    assert np.allclose(b["units_mean"], 3.0 / 28)
    quantiles = forecast[["units_p10", "units_p50", "units_p90"]].to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all() and (quantiles >= 0).all()
    model.save(tmp_path / "artifact")
    loaded = load_servable(FORECAST, tmp_path / "artifact")
    assert loaded == model and loaded.metrics == {"model": {"x": 1.0}}


def test_a_baseline_recommender_round_trips_and_unknown_baselines_are_refused(tmp_path):
    BaselineRecommender("baseline_popularity_30d", k=5, reason="r").save(tmp_path / "a")
    loaded = load_servable(RANKER, tmp_path / "a")
    assert (loaded.name, loaded.k, loaded.reason) == ("baseline_popularity_30d", 5, "r")
    with pytest.raises(ValueError, match="unknown forecast baseline"):
        BaselineForecaster("baseline_nonsense")


# -- a baseline serving on the tiny shop -----------------------------------------------------
@pytest.fixture(scope="module")
def baseline_serving(built_home, tmp_path_factory):
    settings, run_date = copy_home(built_home, tmp_path_factory.mktemp("serving"))
    registry = Registry(settings)
    versions = {}
    for name, baseline, metric in (
        (FORECAST, "baseline_mean_28", "weekly_wape"),
        (RANKER, "baseline_popularity_30d", "ndcg_at_10:all"),
    ):
        results = {"model": {metric: 0.5}, baseline: {metric: 0.4}}
        version = register_baseline(
            settings, name, baseline, run_date, results, reason="test: baseline", created_by="t"
        )
        registry.promote(name, version.version, actor="test", reason="test: baseline serves")
        versions[name] = registry.get(name, version.version)
    return settings, run_date, versions


def test_a_serving_baseline_scores_through_the_nightly_and_its_rows_say_so(baseline_serving):
    settings, run_date, versions = baseline_serving
    forecast = score_forecast(settings, run_date)
    recommendations = score_recommendations(settings, run_date)
    assert forecast["model_version"] == f"baseline_mean_28@{versions[FORECAST].version}"
    assert forecast["serving"] == "baseline_mean_28" and forecast["products"] > 0
    assert recommendations["serving"] == "baseline_popularity_30d"
    assert recommendations["customers"] > 0
    assert registry_version(forecast["model_version"]) == versions[FORECAST].version
    # the prediction suites hold for a baseline's rows as for a model's
    validate_predictions(settings, run_date)


def test_every_known_customer_and_the_new_visitor_get_a_list(baseline_serving):
    import duckdb

    from ml.recommend.baselines import NEW_CUSTOMER

    settings, run_date, _ = baseline_serving
    summary = score_recommendations(settings, run_date)
    assert summary["other_known_customers"] > 0  # the tiny shop has customers absent > 90 days
    assert summary["customers"] == (
        summary["active_customers"] + summary["other_known_customers"] + 1
    )
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        new = con.execute(
            "select rank, reason from predictions.recommendations "
            "where run_date = ? and customer_id = ? order by rank",
            [run_date, NEW_CUSTOMER],
        ).fetchall()
        known = con.execute(
            "select count(distinct customer_id) from features.feat_customer_product "
            "where cutoff_date = ?",
            [run_date],
        ).fetchone()[0]
    finally:
        con.close()
    assert new == [(rank, "popular") for rank in range(1, 11)]
    assert summary["customers"] == known + 1
    validate_predictions(settings, run_date)


def test_a_baseline_version_is_compatible_and_records_its_metrics(baseline_serving):
    _, _, versions = baseline_serving
    version = versions[FORECAST]
    assert incompatibility(FORECAST, version) is None
    assert version.params["baseline"] == "baseline_mean_28"
    assert version.metrics["results"]["model"] == {"weekly_wape": 0.4}
    assert served_label(version).startswith("baseline_mean_28@")


def test_the_bootstrap_promotes_the_winning_baseline_and_keeps_the_trained_model(
    built_home, tmp_path, monkeypatch
):
    """The trained forecaster is made to lose (its holdout shows a WAPE no model reaches): the
    best baseline is registered and serves, the trained model stays a challenger on record."""
    import shopflow.jobs.nightly as nightly
    from ml.training import TrainedModel

    settings, run_date = copy_home(built_home, tmp_path)
    results = TrainedModel.results.fget

    def losing(self):
        out = results(self)
        out["model"] = {**out["model"], "weekly_wape": 99.0}
        return out

    monkeypatch.setattr(TrainedModel, "results", property(losing))
    outcome = nightly.ensure_champion(settings, FORECAST, run_date)
    registry = Registry(settings)
    champion = registry.champion(FORECAST)
    assert outcome["serving"] == champion.params["baseline"] != "model"
    assert outcome["champion"] == champion.version and outcome["beats_baselines"] is False
    assert champion.status_reason == outcome["reason"]
    assert (
        "does not beat" in outcome["reason"] and f"{outcome['serving']} serves" in outcome["reason"]
    )
    trained = registry.get(FORECAST, outcome["challenger"])
    assert trained.status == "challenger" and trained.status_reason == outcome["reason"]
    kept = [e for e in registry.events(FORECAST) if e["action"] == "kept_challenger"]
    assert [e["version"] for e in kept] == [outcome["challenger"]]
    # a second night finds the baseline champion and trains nothing
    assert nightly.ensure_champion(settings, FORECAST, run_date)["trained"] is False


def test_a_champion_of_an_older_feature_schema_is_replaced_by_the_nightly(built_home, tmp_path):
    """After an upgrade that changed the forecaster's features, the serving version cannot
    score: the nightly's ensure_champion trains and promotes a replacement (model or baseline,
    by the holdout) and says why, instead of the night failing; the old version stays."""
    import shopflow.jobs.nightly as nightly

    settings, run_date = copy_home(built_home, tmp_path)
    registry = Registry(settings)
    artifact = tmp_path / "old_artifact"
    artifact.mkdir()
    (artifact / "model.json").write_text("{}")
    old = registry.register(
        FORECAST,
        artifact,
        cutoff_date=run_date,
        params={},
        feature_schema=["a_feature_this_code_no_longer_has"],
        metrics={},
        data_fingerprint={},
        created_by="an older release",
    )
    registry.promote(FORECAST, old.version, actor="test", reason="served before the upgrade")
    assert incompatibility(FORECAST, registry.champion(FORECAST)) is not None

    outcome = nightly.ensure_champion(settings, FORECAST, run_date)
    champion = Registry(settings).champion(FORECAST)
    assert outcome["trained"] is True and champion.version == outcome["champion"] != old.version
    assert incompatibility(FORECAST, champion) is None
    assert outcome["reason"].startswith(f"{FORECAST} {old.version} was trained on a different")
    assert champion.status_reason == outcome["reason"]
    assert Registry(settings).get(FORECAST, old.version) is not None
    assert nightly.ensure_champion(settings, FORECAST, run_date)["trained"] is False


def test_a_forecaster_of_either_feature_list_can_score():
    """A forecaster is saved with the one-year features or with the season's: both are
    schemas this code scores, so an upgrade that added the season keeps a one-year champion
    serving; any other list is refused."""
    from types import SimpleNamespace

    from ml.forecast.model import FEATURES, ONE_YEAR_FEATURES

    def version(schema):
        return SimpleNamespace(version="v1", params={}, feature_schema=list(schema))

    assert incompatibility(FORECAST, version(ONE_YEAR_FEATURES)) is None
    assert incompatibility(FORECAST, version(FEATURES)) is None
    assert incompatibility(FORECAST, version(ONE_YEAR_FEATURES[:-1])) is not None


def test_a_retrain_whose_challenger_loses_promotes_the_best_baseline(settings):
    """promote_or_keep on recorded retrain state (no training): the challenger loses to a
    baseline and there is no champion, so the best baseline is registered and serves."""
    import json

    from shopflow.jobs.retrain import promote_or_keep, retrain_dir

    run_date = dt.date(2025, 5, 30)
    registry = Registry(settings)
    challenger = register_baseline(
        settings, FORECAST, "baseline_zero", run_date, {"baseline_zero": {}}, reason="stand-in",
        created_by="test",
    )  # fmt: skip
    folder = retrain_dir(settings, run_date)
    folder.mkdir(parents=True)
    mean = {"challenger": {"weekly_wape": 0.9}, **_results(None)}
    state = {
        "gate": {"cutoff": run_date.isoformat(), "passed": True, "reason": "ok"},
        "challengers": {FORECAST: challenger.version},
        "evaluation": {FORECAST: {"folds": ["a", "b"], "mean": mean}},
    }
    for name, payload in state.items():
        (folder / f"{name}.json").write_text(json.dumps(payload))
    decision = promote_or_keep(settings, run_date)[FORECAST]
    assert decision["baseline"] == "baseline_mean_28" and decision["promote"] is False
    champion = registry.champion(FORECAST)
    assert champion.params["baseline"] == "baseline_mean_28"
    assert champion.status_reason == decision["reason"]
    assert champion.metrics["results"]["model"] == {"weekly_wape": 0.8}
    assert registry.get(FORECAST, challenger.version).status == "challenger"
