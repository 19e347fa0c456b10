"""Forecast baselines computed in the same run as the model (see docs/design.md, "Metrics").

Each takes the daily history (product_id, demand_date, units_sold) up to the origin and the
population of (product_id, horizon_days) to forecast, and returns units_mean and quantiles.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


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
