"""What the nightly report shows, read from the warehouse, the registry and the quality
reports of one run date (read only; every reader copes with a table that does not exist yet)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from shopflow.registry import Registry
from shopflow.warehouse import connect

TOP_PRODUCTS = 4
# the earlier forecast drawn next to tonight's: this many days back, so half of it has actuals
EARLIER_FORECAST_DAYS = 14
HISTORY_DAYS = 56


def _query(con, sql: str, params: list | None = None) -> pd.DataFrame:
    try:
        return con.execute(sql, params or []).df()
    except Exception as exc:  # a table not built yet (first nights): nothing to show
        if "does not exist" in str(exc):
            return pd.DataFrame()
        raise


def fan_chart_data(settings, run_date: dt.date) -> dict[str, pd.DataFrame]:
    """Tonight's and an earlier forecast of the top products (units sold in the 28 days up to
    the run date), with their daily actuals up to the run date."""
    with connect(settings, read_only=True) as con:
        top = _query(
            con,
            """
            select product_id, sum(units_sold) as units
            from marts.fct_product_daily_demand
            where demand_date between cast(? as date) - 27 and ?
            group by product_id order by units desc, product_id limit ?
            """,
            [run_date, run_date, TOP_PRODUCTS],
        )
        if top.empty:
            return {"top": top, "actuals": pd.DataFrame(), "forecasts": pd.DataFrame()}
        products = top["product_id"].tolist()
        actuals = _query(
            con,
            """
            select product_id, demand_date, units_sold from marts.fct_product_daily_demand
            where product_id in (select unnest(?)) and demand_date between cast(? as date) - ? and ?
            order by product_id, demand_date
            """,
            [products, run_date, HISTORY_DAYS, run_date],
        )
        forecasts = _query(
            con,
            """
            with dates as (
                select max(run_date) filter (where run_date <= cast(? as date) - ?) as earlier,
                    max(run_date) filter (where run_date <= ?) as tonight
                from predictions.demand_forecast
            )
            select f.run_date, f.product_id, f.forecast_date, f.units_mean, f.units_p10,
                f.units_p90, f.model_version
            from predictions.demand_forecast as f, dates
            where f.product_id in (select unnest(?))
                and f.run_date in (dates.earlier, dates.tonight)
            order by f.run_date, f.product_id, f.forecast_date
            """,
            [run_date, EARLIER_FORECAST_DAYS, run_date, products],
        )
    return {"top": top, "actuals": actuals, "forecasts": forecasts}


def live_accuracy(settings, run_date: dt.date) -> dict[str, pd.DataFrame]:
    """The live tables up to the run date: the forecasters' weekly WAPE of the first horizon
    week over every product, the ranker's and its baselines' NDCG@K, and the lists' item hit
    rate by reason (averaged over run dates)."""
    with connect(settings, read_only=True) as con:
        forecast = _query(
            con,
            """
            select run_date, model_name, value from live.live_forecast_accuracy
            where metric = 'weekly_wape' and horizon_bucket = '1-7' and volume_tier = 'all'
                and evaluated_through <= ?
            order by run_date, model_name
            """,
            [run_date],
        )
        ranking = _query(
            con,
            """
            select run_date, model_name, value from live.live_recommendation_outcomes
            where metric = 'ndcg_at_k' and reason = 'all' and evaluated_through <= ?
            order by run_date, model_name
            """,
            [run_date],
        )
        by_reason = _query(
            con,
            """
            select model_name, reason, sum(hits) as hits, avg(value) as item_hit_rate
            from live.live_recommendation_outcomes
            where metric = 'item_hit_rate' and evaluated_through <= ?
            group by model_name, reason
            order by model_name, reason
            """,
            [run_date],
        )
    return {"forecast": forecast, "ranking": ranking, "by_reason": by_reason}


def quality_summary(settings, run_date: dt.date) -> pd.DataFrame:
    """One row per quality report of the night (suite, batch, rules, failures, verdict)."""
    folder = Path(settings.quality_dir) / "reports" / f"nightly_{run_date.isoformat()}"
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        report = json.loads(path.read_text())
        rows.append(
            {
                "suite": report.get("suite"),
                "batch": report.get("batch"),
                "rules": report.get("evaluated"),
                "blocking": len(report.get("blocking_failures") or []),
                "warnings": len(report.get("warnings") or []),
                "quarantined": len(report.get("quarantined") or []),
                "verdict": "blocked" if report.get("blocked") else "passed",
            }
        )
    return pd.DataFrame(rows)


def registry_timeline(settings) -> pd.DataFrame:
    """The registry's decision log: promotions, rollbacks, restorations and why."""
    return pd.DataFrame(
        Registry(settings).events(),
        columns=["event_at", "model_name", "version", "action", "actor", "reason"],
    )
