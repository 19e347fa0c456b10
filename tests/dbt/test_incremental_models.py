"""Incremental models: daily runs, replaced partitions and a backfill equal a full refresh.

One warehouse goes through a sequence of nightly runs. At each checkpoint its incremental
models are compared row for row with a `--full-refresh` from the same raw tables (same ingest
batches), after which the warehouse is restored so the incremental history carries on.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from shopflow.generator import ShopSpec, generate_shop
from shopflow.landing import write_partition
from tests.conftest import make_settings
from tests.dbt.helpers import assert_same_rows, compare_with_full_refresh, run_incremental_models

SPEC = ShopSpec(customers=60, products=15, days=21, start=dt.date(2025, 3, 1), seed=7)
FIRST = SPEC.start + dt.timedelta(days=15)  # the first build
DAY = dt.timedelta(days=1)


def _replace_order_lines(settings, day: dt.date, change) -> None:
    path = settings.landing_dir / "order_lines" / day.isoformat()
    write_partition(change(pd.read_parquet(path)), settings.landing_dir, "order_lines", day)


def _halve_and_double_one(frame: pd.DataFrame) -> pd.DataFrame:
    """A correction: every other line dropped, the first kept line's quantity doubled."""
    kept = frame.iloc[::2].copy()
    kept.iloc[0, kept.columns.get_loc("quantity")] *= 2
    return kept


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    settings = make_settings(tmp_path_factory.mktemp("incremental") / "home")
    settings.ensure_dirs()
    generate_shop(SPEC, settings.landing_dir)
    results = {}

    run_incremental_models(settings, FIRST)
    # The next night, older partitions were corrected: one replaced, one replaced by an
    # empty file. Then one more night.
    _replace_order_lines(settings, FIRST - 3 * DAY, _halve_and_double_one)
    _replace_order_lines(settings, FIRST - 2 * DAY, lambda frame: frame.iloc[0:0])
    run_incremental_models(settings, FIRST + DAY)
    run_incremental_models(settings, FIRST + 2 * DAY)
    results["nightly"] = compare_with_full_refresh(settings, FIRST + 2 * DAY)

    # A backfill of an older date (later partitions stay in raw but turn invisible), then
    # the next night (they turn visible again).
    run_incremental_models(settings, FIRST + DAY, ingest=False)
    results["backfill"] = compare_with_full_refresh(settings, FIRST + DAY)
    run_incremental_models(settings, FIRST + 3 * DAY)
    results["after_backfill"] = compare_with_full_refresh(settings, FIRST + 3 * DAY)
    return results


def _last_demand_date(models: dict) -> dt.date:
    return models["fct_product_daily_demand"]["demand_date"].max().date()


def test_nightly_runs_with_replaced_partitions_equal_a_full_refresh(checkpoints):
    incremental, full = checkpoints["nightly"]
    lines = full["fct_order_lines"]
    assert (lines["partition_date"] == pd.Timestamp(FIRST - 2 * DAY)).sum() == 0
    assert _last_demand_date(full) == FIRST + 2 * DAY
    assert_same_rows(incremental, full)


def test_backfill_equals_a_full_refresh_as_of_its_date(checkpoints):
    incremental, full = checkpoints["backfill"]
    assert _last_demand_date(full) == FIRST + DAY
    assert_same_rows(incremental, full)


def test_night_after_a_backfill_equals_a_full_refresh(checkpoints):
    incremental, full = checkpoints["after_backfill"]
    assert _last_demand_date(full) == FIRST + 3 * DAY
    assert_same_rows(incremental, full)
