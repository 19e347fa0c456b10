"""Forecast baselines computed in the same run as the model (see docs/design.md, "Metrics").

Each takes the daily history (product_id, demand_date, units_sold) up to the origin and the
population of (product_id, horizon_days) to forecast, and returns units_mean and quantiles.

A baseline can also *serve*: when it beats the trained forecaster on the same holdout, the
registry's champion is a :class:`BaselineForecaster` (a small JSON artifact naming the
baseline, with the metrics and the reason it serves), scored by the nightly run like a model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ml.baseline_artifact import read_baseline, save_baseline


def _history(daily: pd.DataFrame, origin: dt.date, days: int) -> pd.DataFrame:
    dates = pd.to_datetime(daily["demand_date"])
    start = pd.Timestamp(origin) - pd.Timedelta(days=days - 1)
    return daily[(dates >= start) & (dates <= pd.Timestamp(origin))]


def _dense_window(daily: pd.DataFrame, products: pd.Index, origin: dt.date, days: int):
    """products x days matrix of units sold over the ``days`` ending at origin (zeros filled)."""
    history = _history(daily, origin, days)
    day_index = pd.date_range(end=pd.Timestamp(origin), periods=days, freq="D")
    table = history.assign(demand_date=pd.to_datetime(history["demand_date"])).pivot_table(
        index="product_id", columns="demand_date", values="units_sold", aggfunc="sum"
    )
    return table.reindex(index=products, columns=day_index).fillna(0.0)


def seasonal_naive(daily: pd.DataFrame, population: pd.DataFrame, origin: dt.date) -> pd.DataFrame:
    """Same weekday of the last week before the origin; quantiles equal the point."""
    products = pd.Index(population["product_id"].unique())
    week = _dense_window(daily, products, origin, 7)  # columns: origin-6 .. origin
    out = population[["product_id", "horizon_days"]].copy()
    # target = origin + h; the same weekday in the last week is origin + h - 7k within window
    column = (out["horizon_days"].to_numpy() - 1) % 7  # 0 -> origin-6 ... 6 -> origin
    row = products.get_indexer(out["product_id"])
    values = week.to_numpy()[row, column]
    out["units_mean"] = values
    out["units_p10"] = values
    out["units_p50"] = values
    out["units_p90"] = values
    return out


def mean_28(daily: pd.DataFrame, population: pd.DataFrame, origin: dt.date) -> pd.DataFrame:
    """28-day mean; quantiles are the 28-day empirical p10/p50/p90."""
    products = pd.Index(population["product_id"].unique())
    window = _dense_window(daily, products, origin, 28).to_numpy()
    stats = pd.DataFrame(
        {
            "product_id": products,
            "units_mean": window.mean(axis=1),
            "units_p10": np.quantile(window, 0.1, axis=1),
            "units_p50": np.quantile(window, 0.5, axis=1),
            "units_p90": np.quantile(window, 0.9, axis=1),
        }
    )
    return population[["product_id", "horizon_days"]].merge(stats, on="product_id", how="left")


def zero(daily: pd.DataFrame, population: pd.DataFrame, origin: dt.date) -> pd.DataFrame:
    """Always zero: shows what a metric rewards on intermittent demand."""
    out = population[["product_id", "horizon_days"]].copy()
    for column in ("units_mean", "units_p10", "units_p50", "units_p90"):
        out[column] = 0.0
    return out


BASELINES = {
    "baseline_seasonal_naive": seasonal_naive,
    "baseline_mean_28": mean_28,
    "baseline_zero": zero,
}


# -- a baseline as a servable forecaster -----------------------------------------------------
# days of feat_product_daily the baselines look back on (mean_28's window is the longest)
HISTORY_DAYS = 28


@dataclass(frozen=True)
class BaselineForecaster:
    """One of :data:`BASELINES`, serving in place of a trained forecaster.

    ``forecast`` has the trained model's interface and population (every product sold in the
    ``active_days`` up to the origin, horizons 1..``horizon_days``); it reads the last
    :data:`HISTORY_DAYS` days of ``feat`` up to the origin.
    """

    name: str
    horizon_days: int = 28
    active_days: int = 90
    reason: str = ""
    metrics: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.name not in BASELINES:
            raise ValueError(f"unknown forecast baseline {self.name!r}; known: {sorted(BASELINES)}")

    @property
    def params(self) -> dict:
        """What the registry records as the version's parameters."""
        return {
            "baseline": self.name,
            "horizon_days": self.horizon_days,
            "active_days": self.active_days,
        }

    def forecast(self, feat: pd.DataFrame, origin: dt.date) -> pd.DataFrame:
        """Forecast every product active at ``origin`` for horizons 1..H with the baseline."""
        from ml.forecast.model import active_at_origin

        dates = pd.to_datetime(feat["demand_date"])
        at_origin = active_at_origin(feat[dates == pd.Timestamp(origin)], self.active_days)
        products = at_origin["product_id"].drop_duplicates().sort_values()
        population = pd.DataFrame(
            {
                "product_id": np.repeat(products.to_numpy(dtype=object), self.horizon_days),
                "horizon_days": np.tile(
                    np.arange(1, self.horizon_days + 1, dtype=np.int32), len(products)
                ),
            }
        )
        history = feat[(dates <= pd.Timestamp(origin)) & feat["product_id"].isin(products)]
        out = BASELINES[self.name](history, population, origin).fillna(0.0)
        out["forecast_date"] = [
            origin + dt.timedelta(days=int(h)) for h in out["horizon_days"].to_numpy()
        ]
        columns = ["product_id", "forecast_date", "horizon_days"]
        quantiles = ["units_mean", "units_p10", "units_p50", "units_p90"]
        out = out[columns + quantiles].reset_index(drop=True)
        for column in quantiles:
            out[column] = out[column].astype("float64").clip(lower=0.0)
        return out

    def save(self, folder: Path) -> list[Path]:
        """Write the baseline's JSON artifact (name, parameters, metrics, reason)."""
        return save_baseline(self, folder)

    @classmethod
    def load(cls, folder: Path) -> BaselineForecaster:
        """The baseline saved in ``folder``."""
        name, params, reason, metrics = read_baseline(folder)
        return cls(
            name,
            horizon_days=int(params.get("horizon_days", 28)),
            active_days=int(params.get("active_days", 90)),
            reason=reason,
            metrics=metrics,
        )
