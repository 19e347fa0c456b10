"""Quality gates after the landing gate: the marts after ``dbt build`` and the run's
predictions before they are published.

Frames are read from the warehouse (GX validates pandas frames, see
shopflow.quality.validation) and shaped so that each committed suite can state its rule over
plain columns: e.g. a frame with one row per active customer and the number of
recommendations they got.

The marts suites check only what dbt's own tests (``dbt_project/models/**/_*__models.yml``:
unique, not_null, relationships, accepted_values, expressions) do not: ``dbt build`` runs
those first and fails the night before this gate on any of them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from shopflow.quality.docs import build_data_docs
from shopflow.quality.report import raise_if_blocked
from shopflow.quality.validation import validate_frame
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


def run_suites(settings: Settings, run_date: dt.date, area: str, frames: dict) -> dict:
    """Validate each frame against the suite of the same name; log warnings, build Data Docs
    once, and raise QualityGateError on a blocking failure."""
    run_name = f"nightly_{run_date.isoformat()}"
    reports = [
        validate_frame(
            frame, suite, batch=f"{area}/{suite}/{run_date}", settings=settings, run_name=run_name
        )
        for suite, frame in frames.items()
    ]
    index = build_data_docs(settings)
    for report in reports:
        for warning in report.warnings:
            log.warning("%s: %s", report.batch, warning.message())
    raise_if_blocked(reports, settings.home)
    return {
        "suites": {
            r.suite: {"evaluated": r.evaluated, "warnings": len(r.warnings)} for r in reports
        },
        "data_docs": str(index),
    }


def validate_predictions(settings: Settings, run_date: dt.date) -> dict:
    """Run the prediction suites; raise QualityGateError on a blocking failure."""
    return run_suites(settings, run_date, "predictions", prediction_frames(settings, run_date))


def local_date_sql(column: str, timezone: str) -> str:
    """SQL for the shop's business date of a UTC timestamp column (as dbt's macro
    local_date): its local date in ``timezone``."""
    if timezone == "UTC":
        return f"cast({column} as date)"
    return f"cast(timezone('{timezone}', {column} at time zone 'UTC') as date)"


def mart_frames(settings: Settings, run_date: dt.date) -> dict:
    """The frames the marts suites validate, keyed by suite name (one small frame each)."""
    with connect(settings, read_only=True) as con:
        # dbt's relationships tests cover fct_orders, fct_product_daily_demand and
        # fct_customer_product_interactions; fct_order_lines is not as of the run date (a
        # backfill may find later lines), so its products are checked here, up to that date.
        references = con.execute(
            """
            select distinct l.product_id, p.product_id is not null as found
            from marts.fct_order_lines l
            left join marts.dim_products p on p.product_id = l.product_id
            where l.ordered_date <= ?
            order by l.product_id
            """,
            [run_date],
        ).df()
        daily_demand = con.execute(
            """
            select product_id,
                   count(*) as days_present,
                   datediff('day', min(demand_date), ?::date) + 1 as days_expected,
                   strftime(max(demand_date), '%Y-%m-%d') as last_date,
                   strftime(?::date, '%Y-%m-%d') as run_date
            from marts.fct_product_daily_demand
            group by product_id order by product_id
            """,
            [run_date, run_date],
        ).df()
        local_date = local_date_sql("ordered_at", settings.timezone)
        reconciliation = con.execute(
            f"""
            with raw_days as (
                select {local_date} as ordered_date, count(*) as raw_rows
                from raw.order_lines where {local_date} <= ? group by 1
            ),
            mart_days as (
                select ordered_date, count(*) as mart_rows
                from marts.fct_order_lines where ordered_date <= ? group by 1
            )
            select strftime(ordered_date, '%Y-%m-%d') as ordered_date,
                   coalesce(raw_rows, 0) as raw_rows, coalesce(mart_rows, 0) as mart_rows
            from raw_days full outer join mart_days using (ordered_date)
            order by 1
            """,
            [run_date, run_date],
        ).df()
        net_units = con.execute(
            """
            with daily as (
                select product_id, ordered_date, sum(quantity) as net_units
                from marts.fct_order_lines
                where ordered_date <= ? and not is_non_product
                group by 1, 2
            ),
            running as (
                select product_id,
                       sum(net_units) over (
                           partition by product_id order by ordered_date
                       ) as cumulative_net_units
                from daily
            )
            select product_id, min(cumulative_net_units) as min_cumulative_net_units
            from running group by product_id order by product_id
            """,
            [run_date],
        ).df()
    return {
        "marts_referential_integrity": references,
        "marts_daily_demand": daily_demand,
        "marts_reconciliation": reconciliation,
        "marts_net_units": net_units,
    }


def validate_marts(settings: Settings, run_date: dt.date) -> dict:
    """Run the marts suites after ``dbt build``; raise QualityGateError on a blocking failure.

    Checks what dbt's own tests do not: every product fct_order_lines sells up to the run
    date is in dim_products, daily demand has no gaps up to the run date, fct_order_lines
    reconciles day by day with the lines ingest loaded into raw, and (warning) no product has
    more returned than sold.
    """
    return run_suites(settings, run_date, "marts", mart_frames(settings, run_date))
