"""Live-accuracy test helpers: predictions for many run dates, the live tables recomputed
independently, in pandas from the raw order lines with ml.metrics, and in-process nights of
the feedback loop for the rollback-on-outcomes tests."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from ml.metrics import below_p10, bias, ndcg_at_k, recall_at_k, scaled_pinball, weekly_wape
from shopflow.dbt import build_warehouse, run_dbt
from shopflow.generator import generate_shop
from shopflow.ingest import ingest_landing
from shopflow.jobs.feedback import (
    LIVE_RULES,
    check_live_accuracy,
    live_comparison,
    record_baselines,
)
from shopflow.jobs.nightly import write_predictions
from shopflow.warehouse import connect
from tests.conftest import make_settings

REASONS = ["repurchase", "bought_together", "similar", "popular"]
LIVE_MODELS = ["live_forecast_accuracy", "live_recommendation_outcomes"]


def write_fake_predictions(settings, run_date: dt.date, seed: int) -> None:
    """Champion-like predictions for ``run_date`` (random but valid): a forecast for every
    product sold in the 90 days up to it, a list of K sellable products for every customer who
    ordered in those 90 days; then the baselines, as the nightly records them."""
    rng = np.random.default_rng(seed)
    with connect(settings, read_only=True) as con:
        products = [
            r[0]
            for r in con.execute(
                "select distinct product_id from marts.fct_product_daily_demand "
                "where demand_date between ? - 89 and ? and units_sold > 0 order by 1",
                [run_date, run_date],
            ).fetchall()
        ]
        customers = [
            r[0]
            for r in con.execute(
                "select distinct customer_id from marts.fct_order_lines where customer_id is "
                "not null and ordered_date between ? - 89 and ? order by 1",
                [run_date, run_date],
            ).fetchall()
        ]
        sellable = [
            r[0]
            for r in con.execute(
                "select product_id from marts.dim_products where is_sellable order by 1"
            ).fetchall()
        ]
    h = settings.forecast_horizon_days
    mean = rng.gamma(1.0, 2.0, size=len(products) * h)
    spread = rng.uniform(0.2, 1.5, size=mean.shape)
    forecast = pd.DataFrame(
        {
            "run_date": run_date,
            "product_id": np.repeat(products, h),
            "forecast_date": [
                run_date + dt.timedelta(days=int(d))
                for d in np.tile(range(1, h + 1), len(products))
            ],
            "horizon_days": np.tile(np.arange(1, h + 1), len(products)),
            "units_mean": mean,
            "units_p10": np.maximum(mean - spread * mean, 0.0),
            "units_p50": mean,
            "units_p90": mean + spread * mean,
            "model_version": "v-fake",
        }
    )
    write_predictions(settings, "demand_forecast", run_date, forecast)
    k = settings.recommendations_k
    rows = []
    for customer in customers:
        chosen = rng.choice(sellable, size=k, replace=False)
        for rank, product in enumerate(chosen, start=1):
            rows.append((run_date, customer, rank, product, float(k - rank), REASONS[rank % 4]))
    lists = pd.DataFrame(
        rows, columns=["run_date", "customer_id", "rank", "product_id", "score", "reason"]
    ).assign(model_version="v-fake")
    write_predictions(settings, "recommendations", run_date, lists)
    record_baselines(settings, run_date)


def build_live(settings, as_of: dt.date, *, full_refresh: bool = False) -> None:
    """Only the live models, as of ``as_of`` (the marts may be built to a later date)."""
    run_dbt(settings, ["run", "--select", *LIVE_MODELS], as_of, full_refresh=full_refresh)


def read_live(settings, table: str) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return con.execute(f"select * exclude (evaluated_through) from live.{table}").df()


# -- the recomputation ------------------------------------------------------------------------
def _raw_sales(settings, as_of: dt.date) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return (
            con.execute(
                "select customer_id, product_id, cast(ordered_at as date) as day, quantity "
                "from raw.order_lines where quantity > 0 and _partition_date <= ? "
                "and cast(ordered_at as date) <= ?",
                [as_of, as_of],
            )
            .df()
            .assign(day=lambda frame: pd.to_datetime(frame["day"]).dt.date)
        )


def _predictions(settings, table: str) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return con.execute(f"select * from predictions.{table}").df()


def expected_forecast_accuracy(settings, as_of: dt.date) -> pd.DataFrame:
    """forecast_accuracy as of ``as_of`` recomputed with ml.metrics from raw.order_lines."""
    sales = _raw_sales(settings, as_of)
    daily = sales.groupby(["product_id", "day"])["quantity"].sum()
    champion = _predictions(settings, "demand_forecast").assign(model_name="demand_forecast")
    baseline = _predictions(settings, "baseline_forecast").assign(model_version=None)
    forecasts = pd.concat([champion, baseline], ignore_index=True)
    forecasts["run_date"] = pd.to_datetime(forecasts["run_date"]).dt.date
    forecasts["forecast_date"] = pd.to_datetime(forecasts["forecast_date"]).dt.date
    forecasts["bucket"] = (forecasts["horizon_days"] - 1) // 7
    last_day = forecasts["run_date"] + pd.to_timedelta((forecasts["bucket"] + 1) * 7, unit="D")
    forecasts = forecasts[pd.to_datetime(last_day).dt.date <= as_of].copy()
    keys = pd.MultiIndex.from_arrays([forecasts["product_id"], forecasts["forecast_date"]])
    forecasts["y"] = daily.reindex(keys).fillna(0).to_numpy()
    rows = []
    for run_date, at in forecasts.groupby("run_date"):
        window = sales[
            (sales["day"] > run_date - dt.timedelta(days=28)) & (sales["day"] <= run_date)
        ]
        units = window.groupby("product_id")["quantity"].sum()
        volume = pd.DataFrame({"product_id": sorted(at["product_id"].unique())})
        volume["units"] = units.reindex(volume["product_id"]).fillna(0).to_numpy()
        volume = volume.sort_values(["units", "product_id"], ascending=[False, True])
        n = len(volume)
        position = np.arange(1, n + 1)
        volume["tier"] = np.where(
            position <= np.ceil(0.2 * n),
            "high",
            np.where(position <= np.ceil(0.5 * n), "medium", "low"),
        )
        at = at.merge(volume[["product_id", "tier"]], on="product_id")
        for tier_name in ["all", "high", "medium", "low"]:
            tier = at if tier_name == "all" else at[at["tier"] == tier_name]
            for (model, bucket), group in tier.groupby(["model_name", "bucket"]):
                values = {
                    "weekly_wape": weekly_wape(group),
                    "bias": bias(group),
                    "pinball": scaled_pinball(group),
                    "below_p10": below_p10(group),
                    "above_p90": float((group["y"] > group["units_p90"]).mean()),
                }
                for metric, value in values.items():
                    rows.append(
                        {
                            "run_date": run_date,
                            "model_name": model,
                            "horizon_bucket": f"{bucket * 7 + 1}-{bucket * 7 + 7}",
                            "volume_tier": tier_name,
                            "metric": metric,
                            "value": None if np.isnan(value) else value,
                            "products": group["product_id"].nunique(),
                            "actual_units": float(group["y"].sum()),
                        }
                    )
    return pd.DataFrame(rows)


def expected_recommendation_outcomes(settings, as_of: dt.date, window: int) -> pd.DataFrame:
    """recommendation_outcomes as of ``as_of`` recomputed with ml.metrics from raw.order_lines."""
    sales = _raw_sales(settings, as_of)
    sales = sales[sales["customer_id"].notna()]
    champion = _predictions(settings, "recommendations").assign(model_name="recommendations")
    baseline = _predictions(settings, "baseline_recommendations")
    lists = pd.concat([champion, baseline], ignore_index=True)
    lists["run_date"] = pd.to_datetime(lists["run_date"]).dt.date
    lists = lists[lists["run_date"] + dt.timedelta(days=window) <= as_of]
    rows = []
    for run_date, at in lists.groupby("run_date"):
        bought = sales[
            (sales["day"] > run_date) & (sales["day"] <= run_date + dt.timedelta(days=window))
        ]
        bought_sets = bought.groupby("customer_id")["product_id"].agg(set).to_dict()
        for model, model_lists in at.groupby("model_name"):
            hits_all, recalls, ndcgs, hit_any = 0, [], [], []
            per_reason: dict[str, list] = {}
            for customer, items in model_lists.sort_values("rank").groupby("customer_id"):
                if customer not in bought_sets:
                    continue
                products, got = list(items["product_id"]), bought_sets[customer]
                recalls.append(recall_at_k(products, got, len(products)))
                ndcgs.append(ndcg_at_k(products, got, len(products)))
                found = [p in got for p in products]
                hit_any.append(any(found))
                hits_all += sum(found)
                for reason, hit in zip(items["reason"], found, strict=True):
                    per_reason.setdefault(reason, []).append((customer, hit))
            for metric, value in (
                ("hit_rate_at_k", np.mean(hit_any)),
                ("recall_at_k", np.mean(recalls)),
                ("ndcg_at_k", np.mean(ndcgs)),
            ):
                rows.append(
                    {
                        "run_date": run_date,
                        "model_name": model,
                        "reason": "all",
                        "metric": metric,
                        "value": float(value),
                        "customers": len(hit_any),
                        "hits": hits_all,
                    }
                )
            for reason, places in per_reason.items():
                rows.append(
                    {
                        "run_date": run_date,
                        "model_name": model,
                        "reason": reason,
                        "metric": "item_hit_rate",
                        "value": float(np.mean([hit for _, hit in places])),
                        "customers": len({c for c, _ in places}),
                        "hits": int(sum(hit for _, hit in places)),
                    }
                )
    return pd.DataFrame(rows)


# -- in-process nights of the feedback loop (the rollback-on-outcomes tests) -----------------
def night_settings(home, **rule):
    """Settings of a fresh home; ``rule`` overrides settings of the rollback rule
    (``live_margin``, ``live_evaluations``), the defaults otherwise."""
    settings = dataclasses.replace(make_settings(home), **rule)
    settings.ensure_dirs()
    return settings


def built_shop(settings, spec):
    """Generate ``spec`` into the home's landing area, ingest it and build the warehouse as
    of its last day; returns the generated shop."""
    shop = generate_shop(spec, settings.landing_dir)
    ingest_landing(settings, shop.last_date)
    build_warehouse(settings, shop.last_date)
    return shop


def rollback_night(
    settings, model_name: str, first_night: dt.date, last_night: dt.date
) -> dt.date | None:
    """Run each night's rollback check from ``first_night`` on; the night ``model_name`` was
    rolled back (None: it kept serving through ``last_night``)."""
    night = first_night
    while night <= last_night:
        if "reason" in check_live_accuracy(settings, night)[model_name]:
            return night
        night += dt.timedelta(days=1)
    return None


def judged_comparison(settings, model_name: str, version: str) -> pd.DataFrame:
    """:func:`live_comparison` of ``version`` over every run date, with ``worse``: it lost to
    the best baseline by more than the settings' margin (the rule's direction)."""
    rule = LIVE_RULES[model_name]
    comparison = live_comparison(settings, model_name, version)
    margin = settings.live_margin
    if rule.lower_is_better:
        comparison["worse"] = comparison["model"] > comparison["best_baseline"] * (1 + margin)
    else:
        comparison["worse"] = comparison["model"] < comparison["best_baseline"] * (1 - margin)
    return comparison
