"""Checking a new champion before its outputs are exposed, and rolling a model back.

``publish_exports`` runs :func:`publish_checked`: the date's snapshot is built (nothing
visible yet) and the checks of :mod:`ml.postpublish` are applied to it for every model whose
version changed since the previous published run (a new champion), comparing with that
run's rows in the same snapshot. If a check fails, the snapshot is discarded, so analysts
never see the rejected outputs; the previous run's version is restored as champion, the
date is scored, validated and published with it, the failed version is marked
``rolled_back`` with the reason, and :class:`PostPublishCheckError` tells on-call what
happened. The last task, ``check_published`` (:func:`check_after_publish`), handles what is
left: a new champion whose scoring failed, so nothing was published. A manual
``shopflow models rollback`` runs :func:`rollback_model`.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.postpublish import (
    TABLE,
    CheckResult,
    PostPublishPolicy,
    check_forecast,
    check_recommendations,
    published_version,
)
from ml.promotion import incompatibility
from ml.serving import served_label
from shopflow.jobs.nightly import score_forecast, score_recommendations
from shopflow.jobs.published import previous_run_date, published_rows, published_run_dates
from shopflow.publish import PUBLISHED_DB, publish
from shopflow.quality import validate_predictions
from shopflow.registry import Registry
from shopflow.warehouse import connect, features_built_as_of, table_exists

log = logging.getLogger(__name__)

RUNBOOK = "docs/lifecycle.md, runbook 'The model was rolled back last night'"


class PostPublishCheckError(RuntimeError):
    """A newly promoted champion failed the post-publish checks (and was rolled back)."""


class NothingToCheck(RuntimeError):
    """An upstream failure left nothing to check: the task is skipped, not failed."""


# -- what the checks compare with ----------------------------------------------------------
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


def changed_models(
    settings, run_date: dt.date, db: Path | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """Models whose version for ``run_date`` (published, or else the current champion) differs
    from the previous published run's: model name -> (new version, previous version).
    ``db``: judge that published file (a snapshot not yet visible) instead."""
    previous = previous_run_date(settings, run_date, db)
    registry = Registry(settings)
    out = {}
    for name, table in TABLE.items():
        new = published_version(published_rows(settings, table, run_date, db))
        if new is None:
            champion = registry.champion(name)
            new = served_label(champion) if champion else None
        old = published_version(published_rows(settings, table, previous, db)) if previous else None
        if new != old:
            out[name] = (new, old)
    return out


def is_published(settings, run_date: dt.date) -> bool:
    """Has the nightly run published ``run_date``?"""
    return run_date in published_run_dates(settings)


def _scored_rows(settings, table: str, run_date: dt.date) -> int:
    """Rows the nightly scoring wrote to predictions.<table> for the date (0 if it failed)."""
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
    settings,
    run_date: dt.date,
    models: list[str],
    policy: PostPublishPolicy | None = None,
    db: Path | None = None,
) -> list[CheckResult]:
    """The post-publish checks of ``models`` on the published exports of ``run_date`` (or on
    the published file ``db``: a snapshot not yet visible)."""
    policy = policy or PostPublishPolicy()
    previous = previous_run_date(settings, run_date, db)
    customers, products = _active(settings, run_date)
    results = []
    for name in models:
        table = TABLE[name]
        today = published_rows(settings, table, run_date, db)
        before = published_rows(settings, table, previous, db) if previous else None
        if name == FORECAST_MODEL:
            results += check_forecast(
                today, before, products, policy, horizon_days=settings.forecast_horizon_days
            )
        else:
            results += check_recommendations(
                today, before, customers, policy, k=settings.recommendations_k
            )
    return results


# -- republishing and rolling back -----------------------------------------------------------
def republish(settings, run_date: dt.date) -> dict:
    """Rebuild ``run_date``'s exports with the current champions: score, validate, publish."""
    built = features_built_as_of(settings)
    if built != run_date:
        raise ValueError(
            f"cannot rebuild the exports for {run_date}: the warehouse is built as of {built}; "
            f"run `shopflow run --date {run_date}` to republish that date with the champions"
        )
    forecast = score_forecast(settings, run_date, current_champion=True)
    recommendations = score_recommendations(settings, run_date, current_champion=True)
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
        if features_built_as_of(settings) != run_date:
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
    lines = _roll_back(settings, run_date, changed, results, failed, exposed=True)
    raise PostPublishCheckError("\n".join(lines))


def _roll_back(
    settings,
    run_date: dt.date,
    changed: dict[str, tuple[str | None, str | None]],
    results: list[CheckResult],
    failed: set[str],
    *,
    exposed: bool,
) -> list[str]:
    """Restore the previous champion of each failed model and republish the date with it.

    ``exposed``: whether the failing outputs were published (False when they were refused
    before the swap). Returns the lines of the message for on-call; raises
    :class:`PostPublishCheckError` when republishing fails.
    """
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
            outcome = (
                f"the exports for {run_date} are the failing ones"
                if exposed
                else f"nothing was published for {run_date}: yesterday's exports are intact"
            )
            lines.append(
                f"{name} {new} failed the post-publish checks for {run_date} ({reasons}); there "
                f"is no previous champion to restore, so it was NOT rolled back and {outcome}. "
                f"{RUNBOOK}."
            )
            continue
        registry.rollback(name, new, old, actor="shopflow_nightly check_published", reason=reason)
        restored.append(name)
        seen = "" if exposed else " Its outputs were checked before publishing and never shown."
        lines.append(
            f"{name} {new} failed the post-publish checks for {run_date} ({reasons}). "
            f"It was marked rolled_back and {old} (the previous champion) restored.{seen}"
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
    return lines


class _Rejected(Exception):
    """The snapshot being published failed the checks of a new champion (internal)."""

    def __init__(self, changed, results, failed):
        super().__init__(f"rejected: {sorted(failed)}")
        self.changed, self.results, self.failed = changed, results, failed


def publish_checked(settings, run_date: dt.date, policy: PostPublishPolicy | None = None) -> dict:
    """The ``publish_exports`` step: publish the date, checking new champions' outputs on the
    built snapshot before it becomes visible.

    A rejected snapshot is never shown: the failing champion is rolled back, the date is
    scored and published with the previous one, and :class:`PostPublishCheckError` says so.
    """

    def check(snapshot: Path) -> None:
        db = snapshot / PUBLISHED_DB
        changed = changed_models(settings, run_date, db)
        if not changed:
            return
        results = run_checks(settings, run_date, list(changed), policy, db)
        for r in results:
            (log.info if r.passed else log.error)("%s %s: %s", r.model_name, r.check, r.detail)
        failed = {n for n in changed if any(not r.passed for r in results if r.model_name == n)}
        if failed:
            raise _Rejected(changed, results, failed)
        log.info("new champion(s) %s passed the checks before publishing", sorted(changed))

    try:
        return publish(settings, run_date, check=check)
    except _Rejected as rejected:
        lines = _roll_back(
            settings,
            run_date,
            rejected.changed,
            rejected.results,
            rejected.failed,
            exposed=False,
        )
        raise PostPublishCheckError("\n".join(lines)) from None


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
