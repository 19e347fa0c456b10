from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd

from shopflow.dbt import run_dbt
from shopflow.warehouse import connect
from tests.conftest import make_settings


def _feat(settings, as_of: dt.date) -> pd.DataFrame:
    with connect(settings, read_only=True) as con:
        return con.execute(
            "select * from features.feat_product_daily where demand_date <= ? "
            "order by product_id, demand_date",
            [as_of],
        ).df()


def test_feat_product_daily_rows_up_to_a_date_do_not_change_when_later_days_arrive(
    built_home, tmp_path
):
    """dbt-level leakage check: features built as of an earlier run date equal the rows up to
    that date of the features built as of the last date (no window looks forward)."""
    settings, run_date = built_home
    earlier = run_date - dt.timedelta(days=30)
    copy = make_settings(tmp_path / "home")
    copy.ensure_dirs()
    shutil.copyfile(settings.warehouse_path, copy.warehouse_path)
    wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.warehouse_path.with_name(wal.name))
    run_dbt(copy, ["run", "--select", "+feat_product_daily"], earlier)
    at_earlier = _feat(copy, earlier)
    at_last = _feat(settings, earlier)
    assert len(at_earlier) > 0
    assert pd.to_datetime(at_earlier["demand_date"]).max() == pd.Timestamp(earlier)
    pd.testing.assert_frame_equal(at_earlier, at_last)
