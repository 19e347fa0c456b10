from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.forecast.model import (
    FEATURES,
    ONE_YEAR_FEATURES,
    ORIGIN_FEATURES,
    DemandForecaster,
    ForecastParams,
    add_intermittency_features,
    build_training_frame,
    closed_weekdays,
    count_quantiles,
    learns_the_season,
    training_origins,
)
from shopflow.jobs import inputs as inputs_module
from shopflow.jobs.inputs import read_forecast_inputs
from shopflow.warehouse import connect

PARAMS = ForecastParams(num_boost_round=20, max_training_rows=50_000)


@pytest.fixture(scope="module")
def feat(built_home) -> tuple[pd.DataFrame, dt.date]:
    settings, run_date = built_home
    with connect(settings, read_only=True) as con:
        return read_forecast_inputs(con, run_date).feat, run_date


@pytest.fixture(scope="module")
def model(feat) -> DemandForecaster:
    frame, run_date = feat
    return DemandForecaster.train(build_training_frame(frame, run_date, PARAMS), PARAMS)


def test_training_frame_never_sees_rows_after_the_cutoff(feat):
    frame, run_date = feat
    cutoff = run_date - dt.timedelta(days=40)
    before = build_training_frame(frame, cutoff, PARAMS)
    # perturb every row after the cutoff: the training frame must not change
    tampered = frame.copy()
    after = pd.to_datetime(tampered["demand_date"]) > pd.Timestamp(cutoff)
    tampered.loc[after, ["units_sold", "mean_7", "mean_28", "lag_7"]] = 999.0
    again = build_training_frame(tampered, cutoff, PARAMS)
    pd.testing.assert_frame_equal(before, again)
    assert pd.to_datetime(before["forecast_date"]).max() <= pd.Timestamp(cutoff)


def test_reading_in_product_slices_gives_the_same_frame(built_home, feat, monkeypatch):
    frame, run_date = feat
    settings, _ = built_home
    assert frame["product_id"].nunique() > 3 * 7
    monkeypatch.setattr(inputs_module, "FORECAST_READ_PRODUCTS", 7)
    with connect(settings, read_only=True) as con:
        sliced = read_forecast_inputs(con, run_date).feat
        whole = con.execute(
            "select * from features.feat_product_daily where demand_date <= ? "
            "order by product_id, demand_date",
            [run_date],
        ).df()
    pd.testing.assert_frame_equal(sliced, whole)
    pd.testing.assert_frame_equal(frame, whole)


def test_scoring_reads_only_the_origin_and_forecasts_the_same(built_home, feat, model):
    frame, run_date = feat
    settings, _ = built_home
    with connect(settings, read_only=True) as con:
        origin_only = read_forecast_inputs(con, run_date, scoring=True).feat
    assert set(pd.to_datetime(origin_only["demand_date"])) == {pd.Timestamp(run_date)}
    pd.testing.assert_frame_equal(
        model.forecast(origin_only, run_date), model.forecast(frame, run_date)
    )


def test_forecast_has_all_horizons_ordered_non_negative_quantiles(feat, model):
    frame, run_date = feat
    forecast = model.forecast(frame, run_date)
    assert not forecast.empty
    horizons = forecast.groupby("product_id")["horizon_days"].apply(sorted)
    assert all(h == list(range(1, 29)) for h in horizons)
    values = forecast[["units_mean", "units_p10", "units_p50", "units_p90"]].to_numpy()
    assert np.isfinite(values).all()
    assert (values >= 0).all()
    assert (forecast["units_p10"] <= forecast["units_p50"]).all()
    assert (forecast["units_p50"] <= forecast["units_p90"]).all()


def _product_row(template: pd.DataFrame, product_id: str, **values) -> pd.DataFrame:
    """A feature row at the template's date with every origin feature set explicitly."""
    row = template.assign(product_id=product_id)
    for column in ORIGIN_FEATURES:
        row[column] = values.get(column, 0.0)
    return row


def test_new_and_all_zero_products_get_finite_forecasts(feat, model):
    frame, run_date = feat
    template = frame[pd.to_datetime(frame["demand_date"]) == pd.Timestamp(run_date)].iloc[[0]]
    # first sold today: 3 units, one order, one customer; nothing else known
    new = _product_row(
        template,
        "NEW",
        units_sold=3.0,
        mean_7=3.0,
        mean_28=3.0,
        mean_91=3.0,
        mean_182=3.0,
        mean_28_trimmed=0.0,
        max_28=3.0,
        sale_days_28=1,
        sale_days_91=1,
        orders_28=1,
        customer_days_28=1,
        largest_order_28=3.0,
        units_per_order_91=3.0,
        last_price=2.5,
        price_ratio_91=1.0,
        price_ratio_28=1.0,
        category_mean_28=float(template["category_mean_28"].iloc[0]),
        category_trend_7_28=1.0,
        family_products=1,
    )
    # sold once 80 days ago, nothing since: every recent window is zero
    zero = _product_row(
        template,
        "ZERO",
        product_age_days=80,
        days_since_last_sale=80,
        last_price=1.0,
        price_ratio_91=1.0,
        price_ratio_28=1.0,
        category_trend_7_28=1.0,
        family_products=1,
    )
    forecast = model.forecast(pd.concat([new, zero]), run_date)
    assert sorted(forecast["product_id"].unique()) == ["NEW", "ZERO"]
    assert len(forecast) == 56
    values = forecast[["units_mean", "units_p10", "units_p50", "units_p90"]].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    # sensible, not a copy of the global mean: the new product expects more than the dormant one
    per_product = forecast.groupby("product_id")["units_mean"].sum()
    assert per_product["NEW"] > per_product["ZERO"]


def test_same_seed_same_model_bytes(feat, tmp_path):
    frame, run_date = feat
    training = build_training_frame(frame, run_date, PARAMS)
    first = DemandForecaster.train(training, PARAMS).save(tmp_path / "a")
    second = DemandForecaster.train(training, PARAMS).save(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_saved_model_loads_and_predicts_the_same(feat, model, tmp_path):
    frame, run_date = feat
    model.save(tmp_path / "m")
    loaded = DemandForecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(model.forecast(frame, run_date), loaded.forecast(frame, run_date))


def test_one_year_model_is_trained_without_the_season_features(feat, model):
    frame, run_date = feat
    assert not learns_the_season(build_training_frame(frame, run_date, PARAMS))
    assert list(model.features) == ONE_YEAR_FEATURES
    assert model.mean_booster.feature_names == ONE_YEAR_FEATURES


def test_model_on_more_than_a_year_learns_the_season_and_round_trips(feat, tmp_path):
    frame, run_date = feat
    training = build_training_frame(frame, run_date, PARAMS)
    # the oldest origin moved a year back: the labels now span more than a year
    oldest = training["demand_date"] == training["demand_date"].min()
    training.loc[oldest, "demand_date"] = pd.to_datetime(
        training.loc[oldest, "demand_date"]
    ) - pd.Timedelta(days=400)
    assert learns_the_season(training)
    seasonal = DemandForecaster.train(training, PARAMS)
    assert list(seasonal.features) == FEATURES
    assert "target_day_of_year" in seasonal.mean_booster.get_score(importance_type="weight")
    seasonal.save(tmp_path / "m")
    loaded = DemandForecaster.load(tmp_path / "m")
    assert loaded.features == seasonal.features
    pd.testing.assert_frame_equal(
        seasonal.forecast(frame, run_date), loaded.forecast(frame, run_date)
    )


def test_training_origins_take_last_years_same_weeks_in_turn_with_the_newest():
    params = ForecastParams()
    cutoff = dt.date(2026, 10, 1)
    last_origin = cutoff - dt.timedelta(days=params.horizon_days)
    one_year = training_origins(dt.date(2025, 12, 1), cutoff, params)
    assert one_year[0] == last_origin
    assert one_year == sorted(one_year, reverse=True)
    two_years = training_origins(dt.date(2025, 1, 1), cutoff, params)
    assert two_years[0] == last_origin
    newest_first = sorted(two_years, reverse=True)
    assert len(set(two_years)) == len(two_years)
    # the same origins, but a year-earlier one comes within the first few
    year_ago = cutoff - dt.timedelta(days=364)
    assert any(abs((origin - year_ago).days) <= 7 for origin in two_years[:3])
    assert not any(abs((origin - year_ago).days) <= 7 for origin in newest_first[:3])
    assert set(two_years) == set(newest_first)


def _labelled(weekdays: list[int], units: list[float], days: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"target_weekday": weekdays, "y": units, "forecast_date": pd.to_datetime(days)}
    )


def test_closed_weekdays_need_no_sale_on_enough_labelled_days():
    saturdays = ["2025-01-04", "2025-01-11", "2025-01-18", "2025-01-25"]
    mondays = ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"]
    sundays = ["2025-01-05", "2025-01-12", "2025-01-19"]  # quiet, but only three days seen
    training = pd.concat(
        [
            # two products per Saturday, never a unit: closed
            _labelled([5] * 8, [0.0] * 8, saturdays * 2),
            # Mondays sell once in eight rows: open
            _labelled([0] * 8, [0.0] * 7 + [2.0], mondays * 2),
            _labelled([6] * 3, [0.0] * 3, sundays),
        ],
        ignore_index=True,
    )
    assert closed_weekdays(training, min_days=4) == (5,)
    assert closed_weekdays(training, min_days=3) == (5, 6)
    assert closed_weekdays(training.iloc[0:0], min_days=4) == ()


def test_closed_weekdays_are_learned_saved_and_forecast_as_zero(feat, model, tmp_path):
    frame, run_date = feat
    training = build_training_frame(frame, run_date, PARAMS)
    assert model.closed_weekdays == closed_weekdays(training, PARAMS.closed_weekday_min_days)
    # close Wednesdays by hand: every forecast for a Wednesday is zero, the other days are not
    closed = dataclasses.replace(model, closed_weekdays=(2,))
    forecast = closed.forecast(frame, run_date)
    wednesday = pd.to_datetime(forecast["forecast_date"]).dt.day_of_week == 2
    columns = ["units_mean", "units_p10", "units_p50", "units_p90"]
    assert wednesday.any() and (forecast.loc[wednesday, columns] == 0.0).all().all()
    open_days = model.forecast(frame, run_date)[~wednesday]
    pd.testing.assert_frame_equal(forecast[~wednesday], open_days)
    assert (open_days["units_p90"] > 0).any()
    closed.save(tmp_path / "m")
    loaded = DemandForecaster.load(tmp_path / "m")
    assert loaded.closed_weekdays == (2,)
    pd.testing.assert_frame_equal(loaded.forecast(frame, run_date), forecast)
    # a model saved before the calendar existed loads with no closed weekday
    (tmp_path / "m" / "calendar.json").unlink()
    assert DemandForecaster.load(tmp_path / "m").closed_weekdays == ()


def test_intermittency_features_describe_how_often_and_how_much_a_product_sells():
    origin = pd.DataFrame(
        {
            # a year-old product: 13 sale days of 2 units in 91 days, 7 of them in the last 28
            # a product 10 days old: 5 sale days, 10 units; a product that sold nothing
            "product_age_days": [365, 9, 200],
            "sale_days_28": [7, 5, 0],
            "sale_days_91": [13, 5, 0],
            "mean_91": [26 / 91, 1.0, 0.0],
        }
    )
    derived = add_intermittency_features(origin)
    np.testing.assert_allclose(derived["sale_rate_28"], [0.25, 0.5, 0.0])
    np.testing.assert_allclose(derived["sale_rate_91"], [1 / 7, 0.5, 0.0])
    np.testing.assert_allclose(derived["size_when_sold_91"], [2.0, 2.0, np.nan])
    np.testing.assert_allclose(derived["sale_interval_91"], [7.0, 2.0, np.nan])
    np.testing.assert_allclose(derived["smoothed_rate"], [0.5 * (0.25 + 1 / 7) * 2.0, 1.0, 0.0])
    assert "sale_rate_28" not in origin.columns  # the caller's frame is left as it was


def test_count_quantiles_are_whole_units_and_widen_with_the_size_of_a_sale():
    rate = np.array([0.05, 0.3, 2.0, 2.0])
    size = np.array([1.0, 1.0, 1.0, 10.0])
    quantiles = count_quantiles(rate, size)
    assert (quantiles == np.round(quantiles)).all()
    assert (np.diff(quantiles, axis=1) >= 0).all()
    # one unit per sale day: the Poisson's quantiles
    np.testing.assert_array_equal(quantiles[:3], [[0, 0, 0], [0, 0, 1], [0, 2, 4]])
    # the same rate in sales of ten units: more days with none, a wider upper tail
    assert quantiles[3, 1] < quantiles[2, 1]
    assert quantiles[3, 2] > quantiles[2, 2]
