"""``shopflow backtest forecast|recommend``: read the inputs, run the pure backtest, report.

Backtests only read: no registry write, no publish, no ingest, no dbt. When the warehouse
lacks what a backtest as of a date needs, they fail fast with :class:`MissingInputsError`
naming the command that builds it. Registering a challenger is its own command
(``shopflow models train MODEL --date D``, :func:`shopflow.jobs.retrain.train_model`).
Folds and fits are shown as they go (:mod:`shopflow.progress`, on stderr: stdout keeps
only the report).
"""

from __future__ import annotations

import datetime as dt

from ml.forecast import backtest as forecast_backtest
from ml.forecast.model import ForecastParams
from ml.recommend import backtest as recommend_backtest
from ml.recommend.ranker import RankerParams
from shopflow.jobs.inputs import (
    MissingInputsError,
    read_training_forecast_inputs,
    read_training_recommend_inputs,
)
from shopflow.progress import progress
from shopflow.warehouse import features_built_as_of

NO_FEATURES = (
    "the warehouse has no features yet: run `make run` (the demo shop) or "
    "`shopflow run --date D` first"
)


def backtest_forecast(
    settings,
    run_date: dt.date | None = None,
    n_origins: int = 2,
    params: ForecastParams | None = None,
) -> forecast_backtest.BacktestResult:
    """Rolling-origin backtest of the forecaster vs its baselines as of ``run_date`` (default:
    the warehouse's last feature date), with ``params`` (default: the nightly's
    ``ForecastParams`` at the settings' horizon)."""
    last_day = features_built_as_of(settings, "feat_product_daily", "demand_date")
    if last_day is None:
        raise MissingInputsError(f"{NO_FEATURES} (warehouse {settings.warehouse_path})")
    run_date = run_date or last_day
    if run_date > last_day:
        raise MissingInputsError(
            f"the warehouse's features end at {last_day}, before {run_date}: "
            f"run `shopflow run --date {run_date}` first"
        )
    with progress(f"backtest forecast as of {run_date}") as shown:
        shown.phase("reading the inputs")
        inputs = read_training_forecast_inputs(settings, run_date)
        params = params or ForecastParams(horizon_days=settings.forecast_horizon_days)
        result = forecast_backtest.backtest_forecaster(
            inputs.feat, run_date, params, n_origins=n_origins, on_phase=shown.phase
        )
    if not result.results:
        raise ValueError(f"nothing to backtest as of {run_date}: history shorter than a window")
    return result


def backtest_recommend(
    settings, run_date: dt.date | None = None, params: RankerParams | None = None
) -> recommend_backtest.BacktestResult:
    """Temporal-split backtest of the ranker vs its baselines as of ``run_date`` (default: the
    warehouse's last build date); needs the ranker's training cutoffs as of that date."""
    run_date = run_date or features_built_as_of(settings)
    if run_date is None:
        raise MissingInputsError(NO_FEATURES)
    with progress(f"backtest recommend as of {run_date}") as shown:
        shown.phase("reading the inputs")
        inputs = read_training_recommend_inputs(settings, run_date)
        result = recommend_backtest.backtest(
            inputs, run_date, params or RankerParams(), on_phase=shown.phase
        )
    if not result.results:
        raise ValueError(f"nothing to backtest as of {run_date}: no purchases or no cutoffs")
    return result


def forecast_report(result: forecast_backtest.BacktestResult) -> str:
    """What ``shopflow backtest forecast`` prints."""
    origins = ", ".join(o.isoformat() for o in result.origins)
    return (
        f"origins: {origins}; training seconds per origin: {result.train_seconds}\n"
        + forecast_backtest.format_table(result.results)
    )


def recommend_report(result: recommend_backtest.BacktestResult) -> str:
    """What ``shopflow backtest recommend`` prints."""
    return recommend_backtest.format_table(result)
