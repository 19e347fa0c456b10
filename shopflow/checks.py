"""Quality gates after the landing gate: the run's predictions before they are published.

Frames are read from the warehouse (GX validates pandas frames here, see shopflow.quality) and
shaped so that each committed suite can state its rule over plain columns: e.g. a frame with
one row per active customer and the number of recommendations they got.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from shopflow.warehouse import connect

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

log = logging.getLogger(__name__)


def prediction_frames(settings: Settings, run_date: dt.date) -> dict:
    """The frames the prediction suites validate, keyed by suite name."""
    with connect(settings, read_only=True) as con:
        recommendations = con.execute(
            """
            select r.*, coalesce(p.is_sellable, false) as is_sellable
            from predictions.recommendations r
            left join marts.dim_products p using (product_id)
            where r.run_date = ?
            """,
            [run_date],
        ).df()
        coverage = con.execute(
            """
            with active as (
                select customer_id from marts.dim_customers
                where last_order_date > ?::date - to_days(?)
            ),
            counts as (
                select customer_id, count(*) as recommendations
                from predictions.recommendations where run_date = ? group by customer_id
            ),
            top1 as (
                select max(n) / nullif(sum(n), 0) as share
                from (
                    select product_id, count(*) as n from predictions.recommendations
                    where run_date = ? and rank = 1 group by product_id
                )
            )
            select active.customer_id, coalesce(counts.recommendations, 0) as recommendations,
                   (select share from top1) as top1_share_of_most_common
            from active left join counts using (customer_id)
            """,
            [run_date, settings.active_customer_days, run_date, run_date],
        ).df()
        forecast = con.execute(
            "select * from predictions.demand_forecast where run_date = ?", [run_date]
        ).df()
        forecast_coverage = con.execute(
            """
            with active as (
                select distinct d.product_id
                from marts.fct_product_daily_demand d
                join marts.dim_products p using (product_id)
                where d.units_sold > 0 and d.demand_date > ?::date - to_days(?)
                  and d.demand_date <= ?
            ),
            counts as (
                select product_id, count(distinct horizon_days) as horizons
                from predictions.demand_forecast where run_date = ? group by product_id
            )
            select active.product_id, coalesce(counts.horizons, 0) as horizons
            from active left join counts using (product_id)
            """,
            [run_date, settings.active_product_days, run_date, run_date],
        ).df()
    return {
        "predictions_recommendations": recommendations,
        "predictions_recommendation_coverage": coverage,
        "predictions_demand_forecast": forecast,
        "predictions_forecast_coverage": forecast_coverage,
    }


def validate_predictions(settings: Settings, run_date: dt.date) -> dict:
    """Run the prediction suites; raise QualityGateError on a blocking failure."""
    from shopflow.quality import build_data_docs, raise_if_blocked, validate_frame

    run_name = f"nightly_{run_date.isoformat()}"
    reports = [
        validate_frame(
            frame,
            suite,
            batch=f"predictions/{suite}/{run_date}",
            settings=settings,
            run_name=run_name,
        )
        for suite, frame in prediction_frames(settings, run_date).items()
    ]
    index = build_data_docs(settings)
    for report in reports:
        for warning in report.warnings:
            log.warning("%s: %s", report.batch, warning.message())
    raise_if_blocked(reports)
    return {
        "suites": {
            r.suite: {"evaluated": r.evaluated, "warnings": len(r.warnings)} for r in reports
        },
        "data_docs": str(index),
    }
