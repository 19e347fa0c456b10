"""The feedback loop: what published numbers were worth once the actuals arrived.

Each night:

1. :func:`record_baselines` writes, next to the champions' predictions, what the cheap
   baselines would have published for the same run date and the same products / customers
   (``predictions.baseline_forecast``: the 28-day mean with its empirical quantiles;
   ``predictions.baseline_recommendations``: the 30-day popular list and the repurchase list
   filled with popular products), all in SQL inside the warehouse;
2. the nightly ``dbt build`` then grows the incremental models ``live.live_forecast_accuracy``
   and ``live.live_recommendation_outcomes`` (dbt_project/models/live/) by what became
   observable, published as ``exports.forecast_accuracy`` and
   ``exports.recommendation_outcomes``;
3. :func:`check_live_accuracy` rolls the serving champion back (the existing rollback,
   :func:`shopflow.jobs.rollback.rollback_model`) when its live accuracy was worse than the
   best baseline's, on the same run dates, by more than ``SHOPFLOW_LIVE_MARGIN`` in
   ``SHOPFLOW_LIVE_EVALUATIONS`` evaluations in a row.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd

from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from shopflow.publish import LIVE_TABLES
from shopflow.registry import Registry
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

BASELINE_TABLES = {
    "baseline_forecast": """
        run_date date not null,
        model_name varchar not null,
        product_id varchar not null,
        forecast_date date not null,
        horizon_days integer not null,
        units_mean double not null,
        units_p10 double not null,
        units_p50 double not null,
        units_p90 double not null
    """,
    "baseline_recommendations": """
        run_date date not null,
        model_name varchar not null,
        customer_id varchar not null,
        rank integer not null,
        product_id varchar not null,
        reason varchar not null
    """,
}
FORECAST_BASELINE = "baseline_mean_28"
POPULAR_BASELINE = "baseline_popularity_30d"
REPURCHASE_BASELINE = "baseline_repurchase_frequency"


# mean-28 over the zero-filled 28 days up to D, for the products the champion forecast at D;
# quantile_cont interpolates like numpy's default (ml.forecast.baselines.mean_28)
_FORECAST_SQL = """
with products as (
    select distinct product_id from predictions.demand_forecast where run_date = $d
),
days as (
    select cast(unnest(generate_series(cast($d as date) - 27, cast($d as date), interval 1 day))
        as date) as demand_date
),
history as (
    select products.product_id, coalesce(demand.units_sold, 0) as units
    from products
    cross join days
    left join marts.fct_product_daily_demand as demand
        on demand.product_id = products.product_id and demand.demand_date = days.demand_date
),
stats as (
    select product_id, avg(units) as units_mean, quantile_cont(units, 0.1) as units_p10,
        quantile_cont(units, 0.5) as units_p50, quantile_cont(units, 0.9) as units_p90
    from history group by product_id
)
select cast($d as date) as run_date, $name as model_name, product_id,
    cast($d as date) + horizon as forecast_date, horizon as horizon_days,
    units_mean, units_p10, units_p50, units_p90
from stats cross join (select cast(unnest(range(1, $h + 1)) as integer) as horizon)
"""

# The 30-day popular list (ties: 30-day buyers, then product id) and each customer's most
# often bought products (ties: 30-day orders), sellable products only, at the cutoff D, for
# the customers the champion recommended to at D (ml.recommend.baselines)
_RECOMMEND_SQL = """
with customers as (
    select distinct customer_id from predictions.recommendations where run_date = $d
),
sellable as (select product_id from marts.dim_products where is_sellable),
popular as (
    select product_id, orders_30,
        row_number() over (order by orders_30 desc, buyers_30 desc, product_id) as position
    from features.feat_product_popularity
    where cutoff_date = $d and orders_30 > 0 and product_id in (select product_id from sellable)
    qualify position <= $k
),
own as (
    select pairs.customer_id, pairs.product_id,
        row_number() over (
            partition by pairs.customer_id
            order by pairs.pair_orders desc, coalesce(pop.orders_30, 0) desc, pairs.product_id
        ) as position
    from features.feat_customer_product as pairs
    left join features.feat_product_popularity as pop
        on pop.cutoff_date = pairs.cutoff_date and pop.product_id = pairs.product_id
    where pairs.cutoff_date = $d
        and pairs.customer_id in (select customer_id from customers)
        and pairs.product_id in (select product_id from sellable)
    qualify position <= $k
),
repurchase as (
    select customer_id, product_id, reason,
        row_number() over (partition by customer_id order by tier, position) as rank
    from (
        select customer_id, product_id, 'repurchase' as reason, 0 as tier, position from own
        union all
        select customers.customer_id, popular.product_id, 'popular', 1, popular.position
        from customers cross join popular
        where not exists (
            select 1 from own
            where own.customer_id = customers.customer_id
                and own.product_id = popular.product_id
        )
    )
    qualify rank <= $k
)
select cast($d as date) as run_date, $popular as model_name, customers.customer_id,
    cast(popular.position as integer) as rank, popular.product_id, 'popular' as reason
from customers cross join popular
union all
select cast($d as date), $repurchase, customer_id, cast(rank as integer), product_id, reason
from repurchase
"""


def _replace_rows(con, table: str, run_date: dt.date, sql: str, params: dict) -> int:
    """Replace predictions.<table>'s run_date rows by the query's (one transaction)."""
    con.execute("create schema if not exists predictions")
    con.execute(f"create table if not exists predictions.{table} ({BASELINE_TABLES[table]})")
    con.execute("begin transaction")
    try:
        con.execute(f"delete from predictions.{table} where run_date = ?", [run_date])
        con.execute(f"insert into predictions.{table} {sql}", params)
        (rows,) = con.execute(
            f"select count(*) from predictions.{table} where run_date = ?", [run_date]
        ).fetchone()
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return int(rows)


def _has_table(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def record_baselines(settings, run_date: dt.date) -> dict:
    """Record the baselines' forecasts and lists for ``run_date`` (replaced on rerun), for the
    products and customers the champions scored that night."""
    out = {}
    with connect(settings) as con:
        if _has_table(con, "predictions", "demand_forecast"):
            out["baseline_forecast"] = _replace_rows(
                con,
                "baseline_forecast",
                run_date,
                _FORECAST_SQL,
                {"d": run_date, "name": FORECAST_BASELINE, "h": settings.forecast_horizon_days},
            )
        if _has_table(con, "predictions", "recommendations"):
            out["baseline_recommendations"] = _replace_rows(
                con,
                "baseline_recommendations",
                run_date,
                _RECOMMEND_SQL,
                {
                    "d": run_date,
                    "k": settings.recommendations_k,
                    "popular": POPULAR_BASELINE,
                    "repurchase": REPURCHASE_BASELINE,
                },
            )
    log.info("baselines recorded for %s: %s", run_date, out)
    return out


# -- rollback on outcomes ---------------------------------------------------------------------
@dataclass(frozen=True)
class LiveRule:
    """How a model's live accuracy is compared with its baselines' (one number per run date).

    ``observable_after_days``: a run date's number is known that many days after it (None:
    the live window, settings.live_window_days)."""

    model_name: str
    table: str
    metric: str
    where: str
    lower_is_better: bool
    observable_after_days: int | None = None


LIVE_RULES = {
    # the first horizon week over every product: the earliest evidence, a week after the run
    FORECAST_MODEL: LiveRule(
        FORECAST_MODEL,
        LIVE_TABLES["forecast_accuracy"],
        "weekly_wape",
        "horizon_bucket = '1-7' and volume_tier = 'all'",
        lower_is_better=True,
        observable_after_days=7,
    ),
    RANKER_MODEL: LiveRule(
        RANKER_MODEL,
        LIVE_TABLES["recommendation_outcomes"],
        "ndcg_at_k",
        "reason = 'all'",
        lower_is_better=False,
    ),
}


def live_comparison(
    settings, model_name: str, version: str, as_of: dt.date | None = None
) -> pd.DataFrame:
    """Per run date served by ``version``: its live metric, the best baseline's on the same
    run date (and which), oldest first; only run dates observable by ``as_of`` when given
    (a rerun or backfill of an earlier night decides on what that night knew)."""
    rule = LIVE_RULES[model_name]
    after = rule.observable_after_days or settings.live_window_days
    as_of = as_of or dt.date.max
    schema, table = rule.table.split(".")
    best = "min" if rule.lower_is_better else "max"
    with connect(settings, read_only=True) as con:
        if not _has_table(con, schema, table):
            return pd.DataFrame(columns=["run_date", "model", "baseline", "best_baseline"])
        comparison = con.execute(
            f"""
            with rows as (
                select run_date, model_name, model_version, value
                from {rule.table}
                where metric = ? and {rule.where} and value is not null
                    and run_date + cast(? as integer) <= cast(? as date)
            ),
            model as (
                select run_date, value as model from rows
                where model_name = ? and model_version = ?
            ),
            baselines as (
                select run_date, {best}(value) as best_baseline,
                    arg_{best}(model_name, value) as baseline
                from rows where model_name like 'baseline_%'
                group by run_date
            )
            select model.run_date, model.model, baselines.baseline, baselines.best_baseline
            from model inner join baselines using (run_date)
            order by model.run_date
            """,
            [rule.metric, after, as_of, model_name, version],
        ).df()
    comparison = comparison.assign(run_date=pd.to_datetime(comparison["run_date"]).dt.date)
    return comparison


def worse_streak(comparison: pd.DataFrame, lower_is_better: bool, margin: float) -> int:
    """How many of the latest evaluations in a row the model was worse than the best baseline
    by more than ``margin`` (relative to the baseline's value)."""
    streak = 0
    for model, baseline in zip(
        reversed(comparison["model"].tolist()),
        reversed(comparison["best_baseline"].tolist()),
        strict=True,
    ):
        worse = (
            model > baseline * (1 + margin) if lower_is_better else model < baseline * (1 - margin)
        )
        if not worse:
            break
        streak += 1
    return streak


def check_live_accuracy(settings, run_date: dt.date) -> dict:
    """Roll back each serving champion whose live accuracy lost to the best baseline by more
    than the margin in the last ``live_evaluations`` evaluations in a row; the registry's
    status_reason records the evidence."""
    from shopflow.jobs.rollback import rollback_model

    registry = Registry(settings)
    out = {}
    for model_name, rule in LIVE_RULES.items():
        champion = registry.champion(model_name)
        if champion is None:
            continue
        comparison = live_comparison(settings, model_name, champion.version, run_date)
        streak = worse_streak(comparison, rule.lower_is_better, settings.live_margin)
        verdict = {
            "champion": champion.version,
            "evaluations": len(comparison),
            "worse_in_a_row": streak,
        }
        if streak >= settings.live_evaluations:
            latest = comparison.tail(streak)
            evidence = "; ".join(
                f"{row.run_date:%Y-%m-%d}: {row.model:.4f} vs "
                f"{row.baseline} {row.best_baseline:.4f}"
                for row in latest.itertuples()
            )
            reason = (
                f"live accuracy as of {run_date}: {rule.metric} ({rule.where}) worse than the "
                f"best baseline by more than {settings.live_margin:.0%} on {streak} run dates "
                f"in a row ({evidence})"
            )
            if registry.previous_champion(model_name) is None:
                verdict["rollback"] = f"no previous champion to roll back to; {reason}"
                log.warning("%s: %s", model_name, verdict["rollback"])
            else:
                verdict["rollback"] = rollback_model(
                    settings, model_name, actor="shopflow_nightly live accuracy", reason=reason
                )
                verdict["reason"] = reason
                log.warning("%s rolled back: %s", model_name, reason)
        out[model_name] = verdict
    return out
