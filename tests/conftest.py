"""Shared fixtures: a tiny generated shop, and a warehouse built from it with real dbt."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from shopflow.generator import ShopSpec
from shopflow.settings import Settings, load_settings

# Test homes hold generated history: a scheduled night for today's date would wait for landing
# data that never comes, holding the nightly's one run slot (every Airflow the tests start
# inherits this). The DAG tests parse with the schedule on (tests/dags/airflow_probe.py).
os.environ.setdefault("SHOPFLOW_SCHEDULE", "off")

TINY_SPEC = ShopSpec(customers=300, products=60, days=150, start=dt.date(2025, 1, 1), seed=3)
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "online_retail_ii"


def make_settings(home: Path) -> Settings:
    return load_settings({"SHOPFLOW_HOME": str(home)})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "home")
    settings.ensure_dirs()
    return settings


@pytest.fixture(scope="session")
def built_home(tmp_path_factory) -> tuple[Settings, dt.date]:
    """A tiny shop ingested and built by dbt as of its last day, with the ranker's training
    cutoffs (shared, read-only use)."""
    from shopflow.dbt import build_training_features, build_warehouse
    from shopflow.generator import generate_shop
    from shopflow.ingest import ingest_landing

    settings = make_settings(tmp_path_factory.mktemp("built") / "home")
    settings.ensure_dirs()
    shop = generate_shop(TINY_SPEC, settings.landing_dir)
    ingest_landing(settings, shop.last_date)
    build_warehouse(settings, shop.last_date)
    build_training_features(settings, shop.last_date)
    return settings, shop.last_date
