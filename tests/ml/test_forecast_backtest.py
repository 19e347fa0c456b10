from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest

from ml.forecast.backtest import (
    TIERS,
    backtest_forecaster,
    forecast_candidates,
    format_table,
    rolling_origins,
    summarize,
    volume_tiers,
)
from ml.forecast.model import ForecastParams
from shopflow.jobs.inputs import read_forecast_inputs
from shopflow.warehouse import connect

PARAMS = ForecastParams(num_boost_round=10, max_training_rows=20_000)


@pytest.fixture(scope="module")
def feat(built_home) -> tuple[pd.DataFrame, dt.date]:
    settings, run_date = built_home
    with connect(settings, read_only=True) as con:
        return read_forecast_inputs(con, run_date).feat, run_date


def test_rolling_origins_are_the_last_windows_oldest_first():
    assert rolling_origins(dt.date(2010, 12, 9), 2, 28) == [
        dt.date(2010, 10, 14),
        dt.date(2010, 11, 11),
    ]


def test_volume_tiers_split_20_30_50_on_history_up_to_the_origin():
    origin = dt.date(2025, 3, 31)
    products = [f"p{i}" for i in range(10)]
    daily = pd.DataFrame(
        {
            "product_id": products,
            "demand_date": [origin] * 10,
            "units_sold": [float(100 - i) for i in range(10)],
        }
    )
    # a huge sale after the origin must not promote p9, one before the 90 days must not count
    later = pd.DataFrame(
        {"product_id": ["p9"], "demand_date": [origin + dt.timedelta(days=1)], "units_sold": [1e6]}
    )
    early = pd.DataFrame(
        {"product_id": ["p8"], "demand_date": [origin - dt.timedelta(days=90)], "units_sold": [1e6]}
    )
    tiers = volume_tiers(pd.concat([daily, later, early]), origin, pd.Index(products))
    assert list(tiers) == ["top20"] * 2 + ["middle"] * 3 + ["tail"] * 5


def test_summarize_pools_origins_without_mixing_their_weeks():
    # the same product at two origins, 7 horizons each (one week): weekly errors are
    # |10 - 4| = 6 at the first origin and |0 - 4| = 4 at the second -> (6 + 4) / 10.
    rows = pd.DataFrame(
        {
            "origin": [dt.date(2025, 1, 1)] * 7 + [dt.date(2025, 1, 29)] * 7,
            "product_id": ["p"] * 14,
            "horizon_days": list(range(1, 8)) * 2,
            "y": [10.0] + [0.0] * 13,
            "units_mean": [4.0 / 7] * 14,
            "units_p10": [0.0] * 14,
            "units_p50": [0.0] * 14,
            "units_p90": [1.0] * 14,
            "candidate": ["model"] * 14,
            "tier": ["top20"] * 14,
        }
    )
    scores = summarize(rows)["model"]
    assert scores["weekly_wape"] == pytest.approx(1.0)
    assert scores["weekly_wape:top20"] == pytest.approx(1.0)
    assert scores["bias"] == pytest.approx((8.0 - 10.0) / 10.0)
    assert scores["coverage_p10_p90"] == pytest.approx(13 / 14)
    assert scores["above_p90"] == pytest.approx(1 / 14)
    assert scores["below_p10"] == pytest.approx(0.0)
    # pinball: p10 0.1*10, p50 0.5*10, p90 0.9*9 + 13*0.1*1, mean of three over sum y 10
    assert scores["pinball"] == pytest.approx((1.0 + 5.0 + 8.1 + 1.3) / 3 / 10)
    assert scores["weekly_wape:middle"] != scores["weekly_wape:middle"]  # NaN: empty tier


def test_model_forecasts_at_an_origin_ignore_every_later_row(feat):
    frame, run_date = feat
    origin = run_date - dt.timedelta(days=28)
    before, _ = forecast_candidates(frame, origin, PARAMS)
    tampered = frame.copy()
    after = pd.to_datetime(tampered["demand_date"]) > pd.Timestamp(origin)
    feature_columns = [c for c in tampered.columns if c not in ("product_id", "demand_date")]
    numeric = [c for c in feature_columns if pd.api.types.is_numeric_dtype(tampered[c])]
    numeric.remove("units_sold")  # the actuals y: they may change, the forecasts may not
    tampered.loc[after, numeric] = 999.0
    again, _ = forecast_candidates(tampered, origin, PARAMS)
    columns = ["product_id", "horizon_days", "candidate", "tier", "units_mean", "units_p90"]
    pd.testing.assert_frame_equal(before[columns], again[columns])


def test_backtest_reports_model_and_baselines_overall_and_by_tier(feat):
    frame, run_date = feat
    result = backtest_forecaster(frame, run_date, PARAMS, n_origins=2)
    assert result.origins == rolling_origins(run_date, 2, 28)
    assert sorted(result.results) == sorted(
        ["model", "baseline_seasonal_naive", "baseline_mean_28", "baseline_zero"]
    )
    expected_keys = {
        f"{metric}{suffix}"
        for metric in (
            "weekly_wape",
            "bias",
            "pinball",
            "coverage_p10_p90",
            "below_p10",
            "above_p90",
        )
        for suffix in ["", *(f":{tier}" for tier in TIERS)]
    }
    assert set(result.results["model"]) == expected_keys
    assert result.results["baseline_zero"]["weekly_wape"] == pytest.approx(1.0)
    assert set(result.rows["tier"].unique()) == set(TIERS)
    assert "baseline_mean_28" in format_table(result.results)


@pytest.fixture
def private_home(built_home, tmp_path, monkeypatch):
    """A private copy of the built warehouse (no registry yet), as SHOPFLOW_HOME."""
    from tests.conftest import make_settings

    settings, run_date = built_home
    home = make_settings(tmp_path / "home")
    home.ensure_dirs()
    shutil.copyfile(settings.warehouse_path, home.warehouse_path)
    wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, home.warehouse_path.with_name(wal.name))
    monkeypatch.setenv("SHOPFLOW_HOME", str(home.home))
    return home, run_date


def _quick(**kw):
    # wiring, not model quality: few boosting rounds keep the fits quick
    return ForecastParams(**{**PARAMS.__dict__, **kw})


def test_cli_backtest_forecast_prints_the_table_and_registers_nothing(
    private_home, monkeypatch, capsys
):
    from shopflow.cli import main

    home, _ = private_home
    monkeypatch.setattr("shopflow.jobs.backtests.ForecastParams", _quick)
    assert main(["backtest", "forecast", "--origins", "2"]) == 0
    printed, shown = capsys.readouterr()
    assert "baseline_mean_28" in printed and "top20" in printed
    assert not home.registry_path.exists()
    # progress goes to stderr, one fold at a time, and never into the printed table
    assert "fold 1/2: origin" in shown and "fold 2/2: origin" in shown
    assert "backtest forecast as of " in shown and ": done in " in shown
    assert "fold 1/2" not in printed


def test_cli_backtest_forecast_after_the_features_end_says_what_to_run(private_home, capsys):
    from shopflow.cli import main

    _, run_date = private_home
    later = run_date + dt.timedelta(days=3)
    assert main(["backtest", "forecast", "--date", later.isoformat()]) == 2
    assert f"`shopflow run --date {later}`" in capsys.readouterr().err


def test_cli_models_train_registers_a_challenger_with_its_backtest(
    private_home, monkeypatch, capsys
):
    from shopflow.cli import main
    from shopflow.registry import Registry

    home, run_date = private_home
    monkeypatch.setattr("ml.training.ForecastParams", _quick)
    assert main(["models", "train", "demand_forecast", "--date", run_date.isoformat()]) == 0
    printed, shown = capsys.readouterr()
    assert "registered demand_forecast" in printed
    what = f"training demand_forecast as of {run_date}"
    first, last = rolling_origins(run_date, 2, 28)
    assert f"{what}: forecaster fold 1/2: origin {first}" in shown
    assert f"{what}: forecaster fold 2/2: origin {last}" in shown
    assert f"{what}: forecaster final fit on everything up to {run_date}" in shown
    assert f"{what}: done in " in shown
    (version,) = Registry(home).versions("demand_forecast")
    assert (version.status, version.created_by) == ("challenger", "shopflow models train")
    assert version.metrics["backtest_origins"] == [
        o.isoformat() for o in rolling_origins(run_date, 2, 28)
    ]
    assert "weekly_wape:tail" in version.metrics["results"]["baseline_mean_28"]


def test_backtest_without_a_built_warehouse_says_what_to_do(settings, monkeypatch, capsys):
    from shopflow.cli import main

    monkeypatch.setenv("SHOPFLOW_HOME", str(settings.home))
    assert main(["backtest", "forecast"]) == 2
    error = capsys.readouterr().err
    assert "has no features yet" in error and "make run" in error
    assert not settings.warehouse_path.exists()


def test_recipe_evaluation_tells_each_fold_as_it_starts(feat):
    from ml.evaluation import evaluate_forecast_recipes, forecast_fold_origins
    from ml.features import ForecastInputs

    frame, run_date = feat
    told: list[str] = []
    evaluation = evaluate_forecast_recipes(
        ForecastInputs(frame), run_date, {"challenger": PARAMS}, n_folds=2, on_phase=told.append
    )
    origins = forecast_fold_origins(run_date, 2)
    assert told == [
        f"forecaster evaluation fold {number}/2: origin {origin}"
        for number, origin in enumerate(origins, start=1)
    ]
    assert evaluation.folds == [o.isoformat() for o in origins]  # telling changes nothing
