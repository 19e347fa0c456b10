"""Real-data fixtures: the Online Retail II year of ../shared/data, loaded through the adapter."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import pytest

from shopflow.adapters import LoadResult, load_source
from tests.conftest import SHARED_DATA

REAL_FILE = SHARED_DATA / "online_retail_ii_2009_2010.parquet"
LAST_DATE = dt.date(2010, 12, 9)


@pytest.fixture(scope="session")
def real_landing(tmp_path_factory) -> tuple[Path, LoadResult, float]:
    """The whole year mapped onto the landing contract once: (landing dir, result, seconds)."""
    if not REAL_FILE.is_file():
        pytest.skip(f"real data not present: {REAL_FILE}")
    landing = tmp_path_factory.mktemp("real_landing") / "landing"
    started = time.perf_counter()
    result = load_source("online-retail-ii", REAL_FILE, landing)
    return landing, result, time.perf_counter() - started


def copy_landing(landing: Path, settings) -> None:
    """Give a Shopflow home its own copy of the loaded landing partitions."""
    shutil.copytree(landing, settings.landing_dir, dirs_exist_ok=True)
