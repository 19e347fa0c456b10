"""Post-publish checks on a newly promoted champion: rules that judge published frames.

For every model whose version changed since the previous published run (a new champion),
``shopflow.jobs.rollback.check_after_publish`` reads the date's and the previous run's
published rows and applies these checks:

- coverage: every active customer has K recommendations, every active product all horizons;
- row counts against the previous run (within ``row_ratio`` either way);
- the share of NaN / empty values (scores, quantities, product ids);
- distribution shift against the previous run: the total forecast units (``units_mean``)
  within ``forecast_total_ratio``; for recommendations, scores that are not all equal and a
  mean overlap of each customer's list with the previous run's of at least ``min_overlap``.

Functions here take frames and plain values; reading, rolling back and republishing are the
job's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL

# the published table each model's predictions land in
TABLE = {RANKER_MODEL: "recommendations", FORECAST_MODEL: "demand_forecast"}


@dataclass(frozen=True)
class PostPublishPolicy:
    """Thresholds of the post-publish checks (see the module docstring)."""

    row_ratio: float = 2.0  # today's rows / previous rows within [1/ratio, ratio]
    max_nan_share: float = 0.0
    forecast_total_ratio: float = 3.0
    min_overlap: float = 0.05  # mean Jaccard of a customer's list with the previous run's


@dataclass(frozen=True)
class CheckResult:
    """One post-publish check of one model: passed or not, and the numbers behind it."""

    model_name: str
    check: str
    passed: bool
    detail: str


def published_version(frame: pd.DataFrame) -> str | None:
    """The one model version of published rows; several joined by commas; None if empty."""
    versions = sorted(set(frame["model_version"])) if not frame.empty else []
    return versions[0] if len(versions) == 1 else (",".join(versions) or None)


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


def check_forecast(
    today: pd.DataFrame,
    before: pd.DataFrame | None,
    active_products: set[str],
    policy: PostPublishPolicy,
    *,
    horizon_days: int,
) -> list[CheckResult]:
    """Checks of a new forecaster's published rows (``today``) against the previous run's."""
    name = FORECAST_MODEL
    values = today[["units_mean", "units_p10", "units_p50", "units_p90"]]
    nan_share = _share(values.isna().any(axis=1)) if not today.empty else 1.0
    horizons = today.groupby("product_id")["horizon_days"].nunique()
    expected = horizon_days
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


def check_recommendations(
    today: pd.DataFrame,
    before: pd.DataFrame | None,
    active_customers: set[str],
    policy: PostPublishPolicy,
    *,
    k: int,
) -> list[CheckResult]:
    """Checks of a new ranker's published rows (``today``) against the previous run's."""
    name = RANKER_MODEL
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
