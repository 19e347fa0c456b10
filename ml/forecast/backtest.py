"""Rolling-origin backtest of the demand forecaster against the baselines
(docs/design.md, "Metrics").

For each origin (default: the last two 28-day windows before the run date, oldest first) the
model is trained on ``feat_product_daily`` rows up to that origin only, then it and every
baseline forecast the same population (products sold in the 90 days up to the origin) for
horizons 1..H. Actuals missing from the warehouse count as zero sales; a product the model does
not forecast counts as forecast zero.

Metrics are pooled over the origins: a (product, origin) pair is one series, so weekly WAPE
sums weeks per product *and* origin. Each is reported overall and by volume tier, with tiers
fixed on history before the origin (units sold in the ``tier_days`` up to it):

- ``top20``: the top 20 % of the population's products by units,
- ``middle``: the next 30 %,
- ``tail``: the remaining 50 % (the long tail; many sold a few units once).

Results are a ``{candidate: {"metric" | "metric:segment": value}}`` dict, the shape the
registry stores in a version's ``metrics["results"]`` and ``shopflow.publish`` turns into
``exports.model_performance`` rows (a key without ``:segment`` is segment ``all``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml import metrics
from ml.forecast import baselines as forecast_baselines
from ml.forecast.model import (
    DemandForecaster,
    ForecastParams,
    active_at_origin,
    build_training_frame,
    expand_horizons,
)

TIERS = ("top20", "middle", "tail")
TIER_SHARES = (0.2, 0.3)  # top and middle; the tail is the rest
PREDICTION_COLUMNS = ("units_mean", "units_p10", "units_p50", "units_p90")
METRIC_NAMES = ("weekly_wape", "bias", "pinball", "coverage_p10_p90", "below_p10", "above_p90")


@dataclass
class BacktestResult:
    """Metrics per candidate plus the pooled rows they were computed from."""

    origins: list[dt.date]
    results: dict[str, dict[str, float]]
    rows: pd.DataFrame  # origin, product_id, horizon_days, y, tier, candidate, predictions
    train_seconds: dict[str, float] = field(default_factory=dict)


def rolling_origins(run_date: dt.date, n_origins: int, horizon_days: int) -> list[dt.date]:
    """``n_origins`` origins ``horizon_days`` apart, oldest first; the last window ends at
    ``run_date``."""
    if n_origins < 1:
        raise ValueError(f"need at least one origin, got {n_origins}")
    return [run_date - dt.timedelta(days=k * horizon_days) for k in range(n_origins, 0, -1)]


def holdout_frame(
    feat: pd.DataFrame, origin: dt.date, horizon_days: int, active_days: int = 90
) -> pd.DataFrame:
    """Population (products active at origin) x horizons, with actual units ``y`` (0 if
    unsold or missing)."""
    dates = pd.to_datetime(feat["demand_date"])
    origin_rows = active_at_origin(feat[dates == pd.Timestamp(origin)], active_days)
    rows = expand_horizons(origin_rows, horizon_days)
    actual = feat[["product_id", "demand_date", "units_sold"]].rename(
        columns={"demand_date": "forecast_date", "units_sold": "y"}
    )
    actual["forecast_date"] = pd.to_datetime(actual["forecast_date"])
    rows = rows.merge(actual, on=["product_id", "forecast_date"], how="left")
    rows["y"] = rows["y"].fillna(0.0)
    return rows


def volume_tiers(
    feat: pd.DataFrame, origin: dt.date, products: pd.Index, tier_days: int = 90
) -> pd.Series:
    """Tier of each product by units sold in the ``tier_days`` up to ``origin`` (ties broken by
    product id so the split is deterministic)."""
    dates = pd.to_datetime(feat["demand_date"])
    window = feat[(dates > pd.Timestamp(origin) - pd.Timedelta(days=tier_days))]
    window = window[pd.to_datetime(window["demand_date"]) <= pd.Timestamp(origin)]
    units = window.groupby("product_id")["units_sold"].sum().reindex(products).fillna(0.0)
    ordered = (
        pd.DataFrame({"product_id": units.index, "units": units.to_numpy()})
        .sort_values(["units", "product_id"], ascending=[False, True])
        .reset_index(drop=True)
    )
    n = len(ordered)
    top = int(round(TIER_SHARES[0] * n))
    middle = int(round((TIER_SHARES[0] + TIER_SHARES[1]) * n))
    tiers = np.where(
        ordered.index < top, TIERS[0], np.where(ordered.index < middle, TIERS[1], TIERS[2])
    )
    return pd.Series(tiers, index=ordered["product_id"], name="tier").reindex(products)


def forecast_candidates(
    feat: pd.DataFrame, origin: dt.date, params: ForecastParams
) -> tuple[pd.DataFrame, float]:
    """Long frame of every candidate's forecasts for one origin, and the model's training
    seconds. Training only ever sees rows dated on or before ``origin``."""
    holdout = holdout_frame(feat, origin, params.horizon_days, params.active_days)
    if holdout.empty:
        return pd.DataFrame(), 0.0
    history = feat[pd.to_datetime(feat["demand_date"]) <= pd.Timestamp(origin)]
    started = time.perf_counter()
    model = DemandForecaster.train(build_training_frame(history, origin, params), params)
    seconds = time.perf_counter() - started
    keys = holdout[["product_id", "horizon_days", "y"]].reset_index(drop=True)
    predicted = model.predict_rows(holdout).reset_index(drop=True)
    frames = [keys.assign(candidate="model", **{c: predicted[c] for c in PREDICTION_COLUMNS})]
    population = keys[["product_id", "horizon_days"]]
    for name, baseline in forecast_baselines.BASELINES.items():
        forecast = baseline(history, population, origin)
        joined = keys.merge(forecast, on=["product_id", "horizon_days"], how="left")
        joined[list(PREDICTION_COLUMNS)] = joined[list(PREDICTION_COLUMNS)].fillna(0.0)
        frames.append(joined.assign(candidate=name))
    products = pd.Index(keys["product_id"].unique())
    tiers = volume_tiers(history, origin, products)
    out = pd.concat(frames, ignore_index=True)
    out["tier"] = out["product_id"].map(tiers)
    out.insert(0, "origin", origin)
    return out, seconds


def summarize(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Metrics per candidate, overall (plain key) and per tier (``metric:tier``)."""
    # one series per (origin, product): weekly sums never mix two origins
    rows = rows.assign(product_id=rows["origin"].astype(str) + "|" + rows["product_id"])
    results: dict[str, dict[str, float]] = {}
    for candidate, part in rows.groupby("candidate", sort=False):
        scores = dict(metrics.forecast_metrics(part))
        for tier in TIERS:
            tier_part = part[part["tier"] == tier]
            for metric, value in metrics.forecast_metrics(tier_part).items():
                scores[f"{metric}:{tier}"] = value
        results[str(candidate)] = scores
    return results


def backtest_forecaster(
    feat: pd.DataFrame,
    run_date: dt.date,
    params: ForecastParams | None = None,
    n_origins: int = 2,
    on_phase: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Rolling-origin backtest ending at ``run_date``; see the module docstring.

    ``on_phase`` (optional) is told each fold as it starts, for a progress display."""
    params = params or ForecastParams()
    feat = feat[pd.to_datetime(feat["demand_date"]) <= pd.Timestamp(run_date)]
    origins, frames, seconds = [], [], {}
    all_origins = rolling_origins(run_date, n_origins, params.horizon_days)
    for number, origin in enumerate(all_origins, start=1):
        if on_phase:
            on_phase(f"forecaster fold {number}/{len(all_origins)}: origin {origin}")
        rows, train_seconds = forecast_candidates(feat, origin, params)
        if rows.empty:
            continue
        origins.append(origin)
        frames.append(rows)
        seconds[origin.isoformat()] = round(train_seconds, 2)
    if not frames:
        return BacktestResult([], {}, pd.DataFrame(), {})
    pooled = pd.concat(frames, ignore_index=True)
    return BacktestResult(origins, summarize(pooled), pooled, seconds)


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one line per (candidate, segment), one column per metric."""
    header = f"{'candidate':<26}{'segment':<9}" + "".join(f"{m:>17}" for m in METRIC_NAMES)
    lines = [header, "-" * len(header)]
    for candidate, scores in results.items():
        for segment in ("all", *TIERS):
            cells = []
            for metric in METRIC_NAMES:
                value = scores.get(metric if segment == "all" else f"{metric}:{segment}")
                cells.append(f"{value:>17.4f}" if value is not None else f"{'-':>17}")
            lines.append(f"{candidate:<26}{segment:<9}" + "".join(cells))
    return "\n".join(lines)
