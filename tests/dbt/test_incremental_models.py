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
# a training build with two training cutoffs inside the tiny shop's history
TRAINING = {"with_training_cutoffs": True, "training_cutoff_offsets_days": [4, 7]}


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

    # A training build on top of the night adds the training cutoffs; then a partition
    # dated before both is corrected, and the next training build must recompute them.
    run_incremental_models(settings, FIRST + 2 * DAY, ingest=False, extra_vars=TRAINING)
    results["training"] = compare_with_full_refresh(settings, FIRST + 2 * DAY, TRAINING)
    _replace_order_lines(settings, FIRST - 6 * DAY, _halve_and_double_one)
    run_incremental_models(settings, FIRST + 2 * DAY, extra_vars=TRAINING)
    results["training_corrected"] = compare_with_full_refresh(settings, FIRST + 2 * DAY, TRAINING)
    # the next night drops the training cutoffs again
    run_incremental_models(settings, FIRST + 2 * DAY, ingest=False)
    results["nightly_after_training"] = compare_with_full_refresh(settings, FIRST + 2 * DAY)

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


def _cutoffs(models: dict, model: str) -> list[dt.date]:
    return sorted({d.date() for d in pd.to_datetime(models[model]["cutoff_date"])})


def test_training_build_adds_the_training_cutoffs_as_a_full_refresh_would(checkpoints):
    incremental, full = checkpoints["training"]
    run_date = FIRST + 2 * DAY
    expected = [run_date - 7 * DAY, run_date - 4 * DAY, run_date]
    for model in ("feat_customer_product", "feat_product_popularity"):
        assert _cutoffs(full, model) == expected
    assert_same_rows(incremental, full)


def test_training_cutoffs_are_recomputed_after_an_older_partition_is_corrected(checkpoints):
    before, _ = checkpoints["training"]
    incremental, full = checkpoints["training_corrected"]
    assert_same_rows(incremental, full)
    # the correction reached every cutoff's rows (else this test would prove nothing)
    units = {
        name: models["feat_customer_product"].groupby("cutoff_date")["pair_units"].sum()
        for name, models in (("before", before), ("after", incremental))
    }
    assert (units["before"] != units["after"]).all()


def test_a_nightly_build_after_training_keeps_only_the_scoring_cutoff(checkpoints):
    incremental, full = checkpoints["nightly_after_training"]
    assert _cutoffs(incremental, "feat_customer_product") == [FIRST + 2 * DAY]
    assert_same_rows(incremental, full)
