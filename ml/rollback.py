"""Post-publish checks on a newly promoted champion, and rolling a model back.

After ``publish_exports``, :func:`check_after_publish` compares the date's published exports
with the previous published run. For every model whose version changed since that run (a new
champion) it checks:

- coverage: every active customer has K recommendations, every active product all horizons;
- row counts against the previous run (within ``row_ratio`` either way);
- the share of NaN / empty values (scores, quantities, product ids);
- distribution shift against the previous run: the total forecast units (``units_mean``)
  within ``forecast_total_ratio``; for recommendations, scores that are not all equal and a
  mean overlap of each customer's list with the previous run's of at least ``min_overlap``.

If a check fails, the previous run's version is restored as champion, the date's exports are
rebuilt with it (score, validate, publish), the failed version is marked ``rolled_back`` with
the reason, and :class:`PostPublishCheckError` tells on-call what happened. A manual
``shopflow models rollback`` runs :func:`rollback_model`, which does the same on request.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

import duckdb
import pandas as pd

from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.lifecycle import incompatibility, published_run_dates, warehouse_as_of
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.registry import Registry
from shopflow.warehouse import connect

log = logging.getLogger(__name__)

RUNBOOK = "docs/lifecycle.md, runbook 'The model was rolled back last night'"
TABLE = {RANKER_MODEL: "recommendations", FORECAST_MODEL: "demand_forecast"}


class PostPublishCheckError(RuntimeError):
    """A newly promoted champion failed the post-publish checks (and was rolled back)."""


class NothingToCheck(RuntimeError):
    """An upstream failure left nothing to check: the task is skipped, not failed."""


@dataclass(frozen=True)
class PostPublishPolicy:
    """Thresholds of the post-publish checks (see the module docstring)."""

    row_ratio: float = 2.0  # today's rows / previous rows within [1/ratio, ratio]
    max_nan_share: float = 0.0
    forecast_total_ratio: float = 3.0
    min_overlap: float = 0.05  # mean Jaccard of a customer's list with the previous run's


@dataclass(frozen=True)
class CheckResult:
    model_name: str
    check: str
    passed: bool
    detail: str


# -- reading the published exports ----------------------------------------------------------
def _published(settings) -> duckdb.DuckDBPyConnection:
    # the published file is replaced atomically and never written in place: a plain
    # read-only connection sees one consistent version
    return duckdb.connect(str(settings.published_db_path), read_only=True)


def previous_run_date(settings, run_date: dt.date) -> dt.date | None:
    if not settings.published_db_path.exists():
        return None
    con = _published(settings)
    try:
        row = con.execute(
            "select max(run_date) from exports.demand_forecast where run_date < ?", [run_date]
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def published_rows(settings, table: str, run_date: dt.date) -> pd.DataFrame:
    if not settings.published_db_path.exists():  # a new home's first night: nothing yet
        return pd.DataFrame({"model_version": pd.Series([], dtype="object")})
    con = _published(settings)
    try:
        return con.execute(f"select * from exports.{table} where run_date = ?", [run_date]).df()
    finally:
        con.close()


def published_version(frame: pd.DataFrame) -> str | None:
    versions = sorted(set(frame["model_version"])) if not frame.empty else []
    return versions[0] if len(versions) == 1 else (",".join(versions) or None)


def _active(settings, run_date: dt.date) -> tuple[set[str], set[str]]:
    """Active customers and products as of ``run_date`` (same rules as the prediction suites)."""
    with connect(settings, read_only=True) as con:
        customers = {
            r[0]
            for r in con.execute(
                "select customer_id from marts.dim_customers "
                "where last_order_date > ?::date - to_days(?)",
                [run_date, settings.active_customer_days],
            ).fetchall()
        }
        products = {
            r[0]
            for r in con.execute(
                """
                select distinct d.product_id
                from marts.fct_product_daily_demand d
                join marts.dim_products p using (product_id)
                where d.units_sold > 0 and d.demand_date > ?::date - to_days(?)
                  and d.demand_date <= ?
                """,
                [run_date, settings.active_product_days, run_date],
            ).fetchall()
        }
    return customers, products


# -- the checks ------------------------------------------------------------------------------
def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _ratio_check(model_name, name, today: float, before: float, bound: float) -> CheckResult:
    if before <= 0:
        return CheckResult(model_name, name, True, f"{today:,.1f} (previous run had none)")
    ratio = today / before
    ok = 1.0 / bound <= ratio <= bound
    return CheckResult(
        model_name,
        name,
        ok,
        f"{today:,.1f} vs {before:,.1f} in the previous run (x{ratio:.2f}; allowed "
        f"x{1 / bound:.2f}..x{bound:.2f})",
    )


def check_forecast(settings, today, before, active_products, policy) -> list[CheckResult]:
    name = FORECAST_MODEL
    values = today[["units_mean", "units_p10", "units_p50", "units_p90"]]
    nan_share = _share(values.isna().any(axis=1)) if not today.empty else 1.0
    horizons = today.groupby("product_id")["horizon_days"].nunique()
    expected = settings.forecast_horizon_days
    missing = sorted(p for p in active_products if horizons.get(p, 0) != expected)
    results = [
        CheckResult(
            name,
            "coverage",
            not missing,
            f"{len(active_products) - len(missing)}/{len(active_products)} active products have "
            f"all {expected} horizons" + (f"; missing e.g. {missing[:3]}" if missing else ""),
        ),
        CheckResult(
            name,
            "nan_share",
            nan_share <= policy.max_nan_share,
            f"{nan_share:.1%} of forecast rows have NaN (allowed {policy.max_nan_share:.1%})",
        ),
    ]
    if before is not None and not before.empty:
        results.append(_ratio_check(name, "row_count", len(today), len(before), policy.row_ratio))
        total_today = float(today["units_mean"].sum(skipna=True))
        total_before = float(before["units_mean"].sum(skipna=True))
        if math.isnan(total_today):
            total_today = 0.0
        results.append(
            _ratio_check(
                name, "units_mean_total", total_today, total_before, policy.forecast_total_ratio
            )
        )
    return results


def check_recommendations(settings, today, before, active_customers, policy) -> list[CheckResult]:
    name = RANKER_MODEL
    k = settings.recommendations_k
    bad = today["score"].isna() | today["product_id"].isna() | (today["product_id"] == "")
    nan_share = _share(bad) if not today.empty else 1.0
    per_customer = today.groupby("customer_id")["rank"].nunique()
    missing = sorted(c for c in active_customers if per_customer.get(c, 0) != k)
    results = [
        CheckResult(
            name,
            "coverage",
            not missing,
            f"{len(active_customers) - len(missing)}/{len(active_customers)} active customers "
            f"have {k} recommendations" + (f"; missing e.g. {missing[:3]}" if missing else ""),
        ),
        CheckResult(
            name,
            "nan_share",
            nan_share <= policy.max_nan_share,
            f"{nan_share:.1%} of recommendations have a NaN score or empty product "
            f"(allowed {policy.max_nan_share:.1%})",
        ),
        CheckResult(
            name,
            "score_spread",
            today["score"].nunique(dropna=True) > 1,
            f"{today['score'].nunique(dropna=True)} distinct scores",
        ),
    ]
    if before is not None and not before.empty:
        results.append(_ratio_check(name, "row_count", len(today), len(before), policy.row_ratio))
        now_lists = today.groupby("customer_id")["product_id"].apply(set)
        old_lists = before.groupby("customer_id")["product_id"].apply(set)
        common = now_lists.index.intersection(old_lists.index)
        overlaps = [
            len(now_lists[c] & old_lists[c]) / len(now_lists[c] | old_lists[c]) for c in common
        ]
        overlap = sum(overlaps) / len(overlaps) if overlaps else 1.0
        results.append(
            CheckResult(
                name,
                "list_overlap",
                overlap >= policy.min_overlap,
                f"mean overlap with the previous run's lists {overlap:.2f} over {len(common)} "
                f"customers (minimum {policy.min_overlap:.2f})",
            )
        )
    return results


def changed_models(settings, run_date: dt.date) -> dict[str, tuple[str | None, str | None]]:
    """Models whose version for ``run_date`` (published, or else the current champion) differs
    from the previous published run's: model name -> (new version, previous version)."""
    previous = previous_run_date(settings, run_date)
    registry = Registry(settings)
    out = {}
    for name, table in TABLE.items():
        new = published_version(published_rows(settings, table, run_date))
        if new is None:
            champion = registry.champion(name)
            new = champion.version if champion else None
        old = published_version(published_rows(settings, table, previous)) if previous else None
        if new != old:
            out[name] = (new, old)
    return out


def is_published(settings, run_date: dt.date) -> bool:
    return run_date in published_run_dates(settings)


def _scored_rows(settings, table: str, run_date: dt.date) -> int:
    """Rows the nightly scoring wrote to predictions.<table> for the date (0 if it failed)."""
    from shopflow.warehouse import table_exists

    with connect(settings, read_only=True) as con:
        if not table_exists(con, "predictions", table):
            return 0
        return con.execute(
            f"select count(*) from predictions.{table} where run_date = ?", [run_date]
        ).fetchone()[0]


def unpublished_checks(settings, run_date: dt.date, models: list[str]) -> list[CheckResult]:
    """When nothing was published for the date: did scoring with a new champion fail?

    NaN predictions never reach the exports (the predictions tables refuse NULL/NaN and the
    prediction suites block them), so a new champion that produces them shows up here, as a
    date without predictions.
    """
    return [
        CheckResult(
            name,
            "scored",
            _scored_rows(settings, TABLE[name], run_date) > 0,
            f"{_scored_rows(settings, TABLE[name], run_date)} rows scored for {run_date} "
            "(scoring with the new champion failed if 0: see the score task's log)",
        )
        for name in models
    ]


def run_checks(
    settings, run_date: dt.date, models: list[str], policy: PostPublishPolicy | None = None
) -> list[CheckResult]:
    """The post-publish checks of ``models`` on the published exports of ``run_date``."""
    policy = policy or PostPublishPolicy()
    previous = previous_run_date(settings, run_date)
    customers, products = _active(settings, run_date)
    results = []
    for name in models:
        table = TABLE[name]
        today = published_rows(settings, table, run_date)
        before = published_rows(settings, table, previous) if previous else None
        if name == FORECAST_MODEL:
            results += check_forecast(settings, today, before, products, policy)
        else:
            results += check_recommendations(settings, today, before, customers, policy)
    return results


# -- republishing and rolling back -----------------------------------------------------------
def republish(settings, run_date: dt.date) -> dict:
    """Rebuild ``run_date``'s exports with the current champions: score, validate, publish."""
    from ml.scoring import score_forecast, score_recommendations
    from shopflow.checks import validate_predictions
    from shopflow.publish import publish

    built = warehouse_as_of(settings)
    if built != run_date:
        raise ValueError(
            f"cannot rebuild the exports for {run_date}: the warehouse is built as of {built}; "
            f"run `shopflow run --date {run_date}` to republish that date with the champions"
        )
    forecast = score_forecast(settings, run_date)
    recommendations = score_recommendations(settings, run_date)
    validate_predictions(settings, run_date)
    published = publish(settings, run_date)
    return {
        "run_date": run_date.isoformat(),
        "demand_forecast": forecast["model_version"],
        "recommendations": recommendations["model_version"],
        "rows": published["rows"],
    }


def check_after_publish(
    settings, run_date: dt.date, policy: PostPublishPolicy | None = None
) -> dict:
    """The ``check_published`` step of the nightly run: check new champions, roll back on failure.

    Raises :class:`PostPublishCheckError` after a rollback (or when one is impossible), with a
    message that says what failed, what was done and where the runbook is, and
    :class:`NothingToCheck` when nothing was published because of an upstream failure that no
    new champion caused (the failed task upstream is the one to look at).
    """
    changed = changed_models(settings, run_date)
    published = is_published(settings, run_date)
    if not changed:
        if not published:
            raise NothingToCheck(
                f"nothing was published for {run_date} and no model changed: the failure is "
                "upstream (see the first failed task); no rollback needed"
            )
        return {"run_date": run_date.isoformat(), "checked": [], "note": "no model changed"}
    if published:
        results = run_checks(settings, run_date, list(changed), policy)
    else:
        if warehouse_as_of(settings) != run_date:
            raise NothingToCheck(
                f"nothing was published for {run_date} and the warehouse was not built for it: "
                "the failure is upstream of the models (see the first failed task); no rollback"
            )
        results = unpublished_checks(settings, run_date, list(changed))
    for r in results:
        (log.info if r.passed else log.error)("%s %s: %s", r.model_name, r.check, r.detail)
    failed = {
        name for name in changed if any(not r.passed for r in results if r.model_name == name)
    }
    if not published and not failed:
        raise NothingToCheck(
            f"nothing was published for {run_date}, but scoring with the new champion(s) "
            f"{sorted(changed)} worked: the failure is elsewhere (see the first failed task)"
        )
    summary = {
        "run_date": run_date.isoformat(),
        "checked": sorted(changed),
        "results": [r.__dict__ for r in results],
    }
    if not failed:
        return summary
    registry = Registry(settings)
    lines, restored = [], []
    for name in sorted(failed):
        new, old = changed[name]
        reasons = "; ".join(
            f"{r.check}: {r.detail}" for r in results if r.model_name == name and not r.passed
        )
        reason = f"post-publish checks for {run_date} failed: {reasons}"
        target = registry.get(name, old) if old and "," not in old else None
        if target is not None and incompatibility(name, target):
            reasons += f"; the previous champion {old} cannot score with this code"
            target = None
        if target is None:
            lines.append(
                f"{name} {new} failed the post-publish checks for {run_date} ({reasons}); there "
                "is no previous champion to restore, so it was NOT rolled back and the exports "
                f"for {run_date} are the failing ones. {RUNBOOK}."
            )
            continue
        registry.rollback(name, new, old, actor="shopflow_nightly check_published", reason=reason)
        restored.append(name)
        lines.append(
            f"{name} {new} failed the post-publish checks for {run_date} ({reasons}). "
            f"It was marked rolled_back and {old} (the previous champion) restored."
        )
    if restored:
        try:
            rebuilt = republish(settings, run_date)
        except Exception as exc:  # the rollback stands; say what is left to do
            lines.append(
                f"Rebuilding the exports for {run_date} failed ({exc}); yesterday's exports are "
                f"intact. Rerun `shopflow run --date {run_date}` once that is fixed. {RUNBOOK}."
            )
            raise PostPublishCheckError("\n".join(lines)) from exc
        lines.append(
            f"The exports for {run_date} were rebuilt with demand_forecast "
            f"{rebuilt['demand_forecast']} and recommendations {rebuilt['recommendations']} "
            f"and passed the prediction suites; analysts can use them. Before promoting that "
            f"model again, find out why it failed: {RUNBOOK}."
        )
    raise PostPublishCheckError("\n".join(lines))


def rollback_model(
    settings,
    model_name: str,
    to_version: str | None = None,
    *,
    actor: str,
    reason: str,
    republish_latest: bool = True,
) -> dict:
    """Manual rollback: the current champion becomes ``rolled_back``, ``to_version`` (default:
    the previous champion) champion again, and the latest published date is rebuilt with it."""
    registry = Registry(settings)
    current = registry.champion(model_name)
    if current is None:
        raise ValueError(f"{model_name} has no champion to roll back")
    target = (
        registry.get(model_name, to_version)
        if to_version
        else registry.previous_champion(model_name)
    )
    if target is None:
        raise ValueError(
            f"{model_name}: no version {to_version!r} to roll back to"
            if to_version
            else f"{model_name}: no previous champion to roll back to; pass --to VERSION"
        )
    refused = incompatibility(model_name, target)
    if refused:
        raise ValueError(f"refusing to roll back to it: {refused}")
    registry.rollback(model_name, current.version, target.version, actor=actor, reason=reason)
    out = {"model_name": model_name, "rolled_back": current.version, "champion": target.version}
    if republish_latest:
        dates = published_run_dates(settings)
        if dates:
            out["republished"] = republish(settings, dates[-1])
    return out
