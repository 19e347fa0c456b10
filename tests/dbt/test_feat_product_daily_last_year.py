"""feat_product_daily's last-year features on a shop with more than a year of history.

The model's windows reach 391 days back, so its incremental read window does too: nights
built one after the other must give the rows a full refresh gives, and the last-year columns
must be what their definition says (computed here again from the daily demand).
"""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest

from shopflow.dbt import run_dbt
from shopflow.generator import ShopSpec, generate_shop
from shopflow.ingest import ingest_landing
from shopflow.warehouse import connect
from tests.conftest import make_settings
from tests.dbt.helpers import assert_same_rows

SPEC = ShopSpec(customers=40, products=8, days=420, start=dt.date(2024, 1, 1), seed=5)
SELECT = ["--select", "+feat_product_daily"]
LAST_YEAR = ["ly_mean_28_next", "ly_mean_28_prev", "ly_ramp_28", "category_ly_ramp_28"]


def _read(settings) -> dict[str, pd.DataFrame]:
    with connect(settings, read_only=True) as con:
        return {
            model: con.execute(
                f"select * from {schema}.{model} order by product_id, demand_date"
            ).df()
            for schema, model in (
                ("features", "feat_product_daily"),
                ("marts", "fct_product_daily_demand"),
            )
        }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[dict, dict]:
    """(tables after a first build and three incremental nights, the same after a full
    refresh of the same raw tables)."""
    settings = make_settings(tmp_path_factory.mktemp("last_year") / "home")
    settings.ensure_dirs()
    shop = generate_shop(SPEC, settings.landing_dir)
    first = shop.last_date - dt.timedelta(days=3)
    ingest_landing(settings, first)
    run_dbt(settings, ["run", *SELECT], first)
    for night in range(1, 4):
        day = first + dt.timedelta(days=night)
        ingest_landing(settings, day)
        run_dbt(settings, ["run", *SELECT], day)
    incremental = _read(settings)
    full_home = make_settings(tmp_path_factory.mktemp("last_year_full") / "home")
    full_home.ensure_dirs()
    shutil.copyfile(settings.warehouse_path, full_home.warehouse_path)
    run_dbt(full_home, ["run", *SELECT], shop.last_date, full_refresh=True)
    return incremental, _read(full_home)


def test_incremental_nights_equal_a_full_refresh_with_last_year_windows(built):
    incremental, full = built
    assert full["feat_product_daily"][LAST_YEAR].notna().any().all()
    assert_same_rows(incremental, full)


def test_last_year_columns_follow_their_definition(built):
    _, full = built
    feat = full["feat_product_daily"].set_index(["product_id", "demand_date"])
    checked = 0
    for product, daily in full["fct_product_daily_demand"].groupby("product_id"):
        units = daily.set_index("demand_date")["units_sold"].astype(float)
        # the demand spine is dense from the product's first sale
        assert len(units) == (units.index.max() - units.index.min()).days + 1
        values = units.to_numpy()
        for position, day in enumerate(units.index):
            row = feat.loc[(product, day)]
            if position < 391:
                assert row[["ly_mean_28_next", "ly_mean_28_prev", "ly_ramp_28"]].isna().all()
                continue
            following = values[position - 363 : position - 335].mean()
            before = values[position - 391 : position - 363].mean()
            assert row["ly_mean_28_next"] == pytest.approx(following)
            assert row["ly_mean_28_prev"] == pytest.approx(before)
            if before > 0:
                assert row["ly_ramp_28"] == pytest.approx(following / before)
            else:
                assert np.isnan(row["ly_ramp_28"])
            checked += 1
    assert checked > 0
