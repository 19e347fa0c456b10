"""Train and evaluate both models, as of a business date, on frames already read.

Evaluation is time-based and honest: the candidate configuration is fitted at an earlier
cutoff and scored on the 28 days that followed it, next to the baselines computed on the
same holdout; the model that is returned is then refitted on everything up to the date.
Registering it (saving the artifact, recording the version) is the caller's business:
:class:`TrainedModel` carries everything the registry records.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ml.features import ForecastInputs, RecommendInputs, frame_fingerprint
from ml.forecast import backtest as forecast_backtest
from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.forecast.model import DemandForecaster, ForecastParams, build_training_frame
from ml.recommend import backtest as recommend_backtest
from ml.recommend.ranker import FEATURES as RANKER_FEATURES
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.recommend.ranker import Ranker, RankerParams

log = logging.getLogger(__name__)
HOLDOUT_DAYS = 28


@dataclass
class TrainedModel:
    """A model fitted on everything up to ``cutoff_date`` and the record that goes with it.

    ``model`` has ``save(folder)``; ``training`` is the frame it was fitted on (the registry
    keeps its fingerprint, :func:`ml.features.frame_fingerprint`)."""

    model_name: str
    model: object
    cutoff_date: dt.date
    params: dict
    feature_schema: list[str]
    metrics: dict
    training: pd.DataFrame

    @property
    def results(self) -> dict:
        """The holdout evaluation: ``{candidate: {metric: value}}``, model and baselines."""
        return self.metrics["results"]

    def record(self) -> dict:
        """What the registry stores with the version besides the artifact."""
        return {
            "cutoff_date": self.cutoff_date,
            "params": self.params,
            "feature_schema": self.feature_schema,
            "metrics": self.metrics,
            "data_fingerprint": frame_fingerprint(self.training),
        }


# -- forecasting ---------------------------------------------------------------------------
def forecast_holdout_frame(feat: pd.DataFrame, origin: dt.date, horizon: int) -> pd.DataFrame:
    """Population (products active at origin) x horizons with actual units y (0 if unsold)."""
    return forecast_backtest.holdout_frame(feat, origin, horizon, active_days=90)


def evaluate_forecaster(
    feat: pd.DataFrame, origin: dt.date, params: ForecastParams
) -> dict[str, dict[str, float]]:
    """Fit at ``origin``, score the following H days; baselines on the same rows.

    Metrics overall and by volume tier (``metric:tier``), see ``ml.forecast.backtest``."""
    rows, _ = forecast_backtest.forecast_candidates(feat, origin, params)
    if rows.empty:
        return {}
    return forecast_backtest.summarize(rows)


def train_forecaster(
    inputs: ForecastInputs,
    run_date: dt.date,
    *,
    params: ForecastParams | None = None,
    backtest_origins: int = 2,
    backtest: forecast_backtest.BacktestResult | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> TrainedModel:
    """Backtest the configuration (rolling origin, ``backtest_origins`` 28-day windows ending
    at ``run_date``; or reuse ``backtest`` when the caller already ran it), then fit on
    everything up to ``run_date``. The backtest is the version's record, so publishing puts
    it into ``exports.model_performance`` once the model is registered. ``on_phase``
    (optional) is told each fold and the final fit as they start, for a progress display."""
    params = params or ForecastParams()
    if backtest is None:
        backtest = forecast_backtest.backtest_forecaster(
            inputs.feat, run_date, params, n_origins=backtest_origins, on_phase=on_phase
        )
    evaluation = backtest.results
    first_origin = backtest.origins[0] if backtest.origins else run_date
    if on_phase:
        on_phase(f"forecaster final fit on everything up to {run_date}")
    training = build_training_frame(inputs.feat, run_date, params)
    model = DemandForecaster.train(training, params)
    return TrainedModel(
        FORECAST_MODEL,
        model,
        run_date,
        params=params.__dict__,
        feature_schema=list(model.features),
        metrics={
            "holdout_origin": first_origin.isoformat(),
            "backtest_origins": [o.isoformat() for o in backtest.origins],
            "primary_metric": "weekly_wape",
            "results": evaluation,
        },
        training=training,
    )


# -- recommendations -----------------------------------------------------------------------
# ranking_report and purchases_between live with the backtest; re-exported here for callers
ranking_report = recommend_backtest.ranking_report
purchases_between = recommend_backtest.purchases_between


def evaluate_ranker(
    inputs: RecommendInputs,
    run_date: dt.date,
    params: RankerParams,
    on_phase: Callable[[str], None] | None = None,
) -> dict:
    """Hold out the 28 days up to run_date: fit at the feature cutoffs whose labels end by
    run_date-28, evaluate at run_date-28 next to the baselines (ml.recommend.backtest)."""
    return recommend_backtest.backtest(inputs, run_date, params, on_phase).results


def train_ranker(
    inputs: RecommendInputs,
    run_date: dt.date,
    *,
    params: RankerParams | None = None,
    evaluation: dict | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> TrainedModel:
    """Evaluate (unless ``evaluation`` is given: a backtest of the same recipe), then refit on
    every feature cutoff whose label window ends by run_date. ``on_phase`` (optional) is told
    each step as it starts, for a progress display."""
    params = params or RankerParams()
    if evaluation is None:
        if on_phase:
            on_phase(f"ranker holdout evaluation ({HOLDOUT_DAYS} days up to {run_date})")
        evaluation = evaluate_ranker(inputs, run_date, params, on_phase)
    cutoffs = recommend_backtest.training_cutoffs(inputs, run_date)
    if not cutoffs:
        raise ValueError(
            f"no feature cutoff at least {HOLDOUT_DAYS} days before {run_date}: "
            "check feature_cutoff_offsets_days in dbt_project.yml"
        )
    if on_phase:
        on_phase(f"ranker final fit at {len(cutoffs)} cutoffs up to {run_date}")
    training = recommend_backtest.training_frame(inputs, cutoffs, params, on_phase)
    if on_phase:
        on_phase(f"ranker final fit on {len(training):,} rows")
    ranker = Ranker.train(training, params)
    return TrainedModel(
        RANKER_MODEL,
        ranker,
        run_date,
        params=params.__dict__,
        feature_schema=RANKER_FEATURES,
        metrics={
            "holdout_cutoff": (run_date - dt.timedelta(days=HOLDOUT_DAYS)).isoformat(),
            "primary_metric": f"ndcg_at_{params.k}:all",
            "train_cutoffs": [c.isoformat() for c in cutoffs],
            "results": evaluation,
        },
        training=training,
    )
