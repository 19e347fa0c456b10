"""Incremental models on the real Online Retail II year: the last 14 nightly runs, one date
at a time (ingest + dbt), equal one full refresh as of the last date, row for row."""

from __future__ import annotations

import datetime as dt
import time

import duckdb
import pytest

from tests.conftest import make_settings
from tests.dbt.helpers import assert_same_rows, compare_with_full_refresh, run_incremental_models
from tests.realdata.conftest import LAST_DATE, copy_landing

pytestmark = pytest.mark.realdata

NIGHTS = 14


@pytest.fixture(scope="module")
def stepped(real_landing, tmp_path_factory, record_testsuite_property):
    landing, _, _ = real_landing
    settings = make_settings(tmp_path_factory.mktemp("real_incremental") / "home")
    settings.ensure_dirs()
    copy_landing(landing, settings)
    first = LAST_DATE - dt.timedelta(days=NIGHTS)
    started = time.perf_counter()
    run_incremental_models(settings, first)
    first_build = time.perf_counter() - started
    nights = []
    for offset in range(1, NIGHTS + 1):
        started = time.perf_counter()
        run_incremental_models(settings, first + dt.timedelta(days=offset))
        nights.append(time.perf_counter() - started)
    incremental, full = compare_with_full_refresh(settings, LAST_DATE)
    record_testsuite_property("incremental_first_build_seconds", round(first_build, 1))
    record_testsuite_property("incremental_night_seconds_mean", round(sum(nights) / NIGHTS, 1))
    print(
        f"real year, incremental models: first build (ingest + dbt) {first_build:.1f} s, "
        f"{NIGHTS} nights {sum(nights):.1f} s (mean {sum(nights) / NIGHTS:.1f} s, "
        f"max {max(nights):.1f} s)"
    )
    return incremental, full


def _landed_order_lines(landing, last_date: dt.date) -> tuple[int, int]:
    """(lines, units) in the landing partitions dated up to ``last_date``, read straight from
    their Parquet files: what the warehouse should hold when nothing is quarantined."""
    return duckdb.execute(
        """
        select count(*), sum(quantity)
        from read_parquet($glob, filename = true)
        where regexp_extract(filename, '(\\d{4}-\\d{2}-\\d{2})', 1)::date <= $last_date
        """,
        {"glob": str(landing / "order_lines" / "*" / "*.parquet"), "last_date": last_date},
    ).fetchone()


def test_fourteen_nightly_runs_equal_a_full_refresh(stepped, real_landing):
    incremental, full = stepped
    landing, _, _ = real_landing
    lines, units = _landed_order_lines(landing, LAST_DATE)
    demand = full["fct_product_daily_demand"]
    assert demand["demand_date"].max().date() == LAST_DATE
    facts = full["fct_order_lines"]
    assert (len(facts), int(facts["quantity"].sum())) == (lines, units)
    assert_same_rows(incremental, full)
