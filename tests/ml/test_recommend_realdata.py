"""The recommender on the real Online Retail II year: last 28 days held out (CI, realdata)."""

from __future__ import annotations

import datetime as dt

import pytest

from ml.recommend.backtest import backtest
from ml.recommend.ranker import RankerParams
from tests.conftest import SHARED_DATA, make_settings

REAL_FILE = SHARED_DATA / "online_retail_ii_2009_2010.parquet"
RUN_DATE = dt.date(2010, 12, 9)
BASELINES = [
    "baseline_popularity_30d",
    "baseline_repurchase_frequency",
    "baseline_item_cooccurrence",
    "baseline_recency_weighted_repurchase",
]

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real_inputs(tmp_path_factory):
    if not REAL_FILE.is_file():
        pytest.skip(f"real data not present: {REAL_FILE}")
    from shopflow.adapters import load_source
    from shopflow.dbt import build_training_features, build_warehouse
    from shopflow.ingest import ingest_landing
    from shopflow.jobs.inputs import read_training_recommend_inputs

    settings = make_settings(tmp_path_factory.mktemp("real") / "home")
    settings.ensure_dirs()
    load_source("online-retail-ii", REAL_FILE, settings.landing_dir)
    ingest_landing(settings, RUN_DATE)
    build_warehouse(settings, RUN_DATE)
    build_training_features(settings, RUN_DATE)
    return read_training_recommend_inputs(settings, RUN_DATE)


@pytest.fixture(scope="module")
def result(real_inputs):
    return backtest(real_inputs, RUN_DATE, RankerParams())


def test_ranker_beats_every_baseline_on_recall_and_ndcg(result):
    model = result.results["model"]
    for name in BASELINES:
        assert model["recall_at_10:all"] > result.results[name]["recall_at_10:all"], name
        assert model["ndcg_at_10:all"] > result.results[name]["ndcg_at_10:all"], name


def test_backtest_trains_before_the_holdout_and_reports_the_candidate_ceiling(result):
    assert result.test_cutoff == dt.date(2010, 11, 11)
    assert max(result.train_cutoffs) + dt.timedelta(days=28) <= result.test_cutoff
    assert 0.3 < result.results["model"]["candidate_recall_at_100:all"] <= 1.0
