"""Helpers for the dbt tests: run the incremental models and read them back row for row."""

from __future__ import annotations

import datetime as dt
import shutil
from typing import TYPE_CHECKING

import pandas as pd

from shopflow.dbt import run_dbt
from shopflow.ingest import ingest_landing
from shopflow.warehouse import connect

if TYPE_CHECKING:
    from shopflow.settings import Settings

# Every incremental model with its schema and grain (the sort order of a row-for-row
# comparison).
INCREMENTAL_MODELS = {
    "fct_order_lines": ("marts", ["order_id", "line_number"]),
    "fct_product_daily_demand": ("marts", ["product_id", "demand_date"]),
    "feat_product_daily": ("features", ["product_id", "demand_date"]),
    "feat_customer_product": ("features", ["cutoff_date", "customer_id", "product_id"]),
    "feat_product_popularity": ("features", ["cutoff_date", "product_id"]),
    "feat_product_cooccurrence": ("features", ["cutoff_date", "product_id", "related_product_id"]),
}
# Their parents, in one selection, so a step runs only what they need (the views upstream).
SELECT_INCREMENTAL = ["--select", *(f"+{model}" for model in INCREMENTAL_MODELS)]


def run_incremental_models(
    settings: Settings,
    run_date: dt.date,
    *,
    full_refresh: bool = False,
    ingest: bool = True,
    extra_vars: dict | None = None,
) -> None:
    """One nightly step for the incremental models: ingest up to the date, then `dbt run`."""
    if ingest:
        ingest_landing(settings, run_date)
    run_dbt(
        settings,
        ["run", *SELECT_INCREMENTAL],
        run_date,
        full_refresh=full_refresh,
        extra_vars=extra_vars,
    )


def read_incremental_models(settings: Settings) -> dict[str, pd.DataFrame]:
    """Every incremental model's rows in grain order, for an exact comparison."""
    frames = {}
    with connect(settings, read_only=True) as con:
        for model, (schema, grain) in INCREMENTAL_MODELS.items():
            frame = con.execute(f"select * from {schema}.{model} order by {', '.join(grain)}").df()
            frames[model] = frame.reset_index(drop=True)
    return frames


def assert_same_rows(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    """Same models, same columns in the same order, same rows and values (floats exactly)."""
    assert sorted(actual) == sorted(expected)
    for model in expected:
        assert len(actual[model]) == len(expected[model]), model
        # exact for keys, counts and dates; money sums are DOUBLE, and summing the same lines in
        # another order (one day at a time vs all at once) may differ in the last bits
        pd.testing.assert_frame_equal(
            actual[model], expected[model], check_exact=False, rtol=1e-12, atol=1e-9, obj=model
        )


def compare_with_full_refresh(
    settings: Settings, run_date: dt.date, extra_vars: dict | None = None
) -> tuple[dict, dict]:
    """(incremental models as they are, the same models after `--full-refresh` as of
    ``run_date`` from the same raw tables). The warehouse file is restored afterwards, so
    the incremental history carries on as if the full refresh never ran."""
    incremental = read_incremental_models(settings)
    backup = settings.warehouse_path.with_name("before_full_refresh.duckdb")
    shutil.copyfile(settings.warehouse_path, backup)
    try:
        run_incremental_models(
            settings, run_date, full_refresh=True, ingest=False, extra_vars=extra_vars
        )
        full = read_incremental_models(settings)
    finally:
        backup.replace(settings.warehouse_path)
    return incremental, full
