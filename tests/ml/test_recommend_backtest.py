"""The recommender backtest: hand-checked report, and `shopflow backtest recommend` end to end."""

from __future__ import annotations

import datetime as dt
import math
import shutil
import types

import duckdb
import pandas as pd
import pytest

from ml.evaluation import ranker_folds
from ml.recommend.backtest import ranking_report
from shopflow.cli import main
from shopflow.publish import publish_registry_tables
from shopflow.registry import Registry
from tests.conftest import make_settings

CUTOFF = dt.date(2025, 3, 1)


def test_ranking_report_splits_repeat_and_first_time_purchases():
    purchases = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2", "c2"],
            "product_id": ["A", "A", "B", "C", "Z"],
            # Z is bought 29 days after the cutoff: outside the 28-day test window
            "ordered_date": pd.to_datetime(
                ["2025-02-01", "2025-03-05", "2025-03-06", "2025-03-10", "2025-03-30"]
            ),
        }
    )
    lists = pd.DataFrame(
        {"customer_id": ["c1", "c1", "c2"], "rank": [1, 2, 1], "product_id": ["A", "X", "C"]}
    )
    report = ranking_report(lists, purchases, CUTOFF, k=2)
    # c1 bought {A, B}: hit at rank 1 of 2 -> recall 1/2, NDCG 1 / (1 + 1/log2(3)); c2: 1, 1
    c1_ndcg = 1.0 / (1.0 + 1.0 / math.log2(3))
    assert report["recall_at_2:all"] == pytest.approx((0.5 + 1.0) / 2)
    assert report["ndcg_at_2:all"] == pytest.approx((c1_ndcg + 1.0) / 2)
    # repeat: only c1's A (bought before the cutoff) -> 1, 1
    assert report["customers:repeat"] == 1
    assert report["recall_at_2:repeat"] == 1.0 and report["ndcg_at_2:repeat"] == 1.0
    # first time: c1's B (missed), c2's C (hit at 1)
    assert report["customers:first_time"] == 2
    assert report["recall_at_2:first_time"] == 0.5 and report["ndcg_at_2:first_time"] == 0.5


@pytest.fixture(scope="module")
def backtested(built_home, tmp_path_factory):
    """A copy of the tiny built shop (with the ranker's training cutoffs) for the commands."""
    settings, run_date = built_home
    home = tmp_path_factory.mktemp("backtest") / "home"
    shutil.copytree(settings.home, home, ignore=shutil.ignore_patterns("*.lock", "airflow"))
    return make_settings(home), run_date


def test_backtest_command_prints_the_model_and_every_baseline(backtested, monkeypatch, capsys):
    settings, run_date = backtested
    monkeypatch.setenv("SHOPFLOW_HOME", str(settings.home))
    assert main(["backtest", "recommend"]) == 0
    out, shown = capsys.readouterr()
    # the ranker's steps as they go, on stderr only
    assert f"backtest recommend as of {run_date}: ranker training candidates, cutoff 1/" in shown
    assert "ranker fit on " in shown and "ranker scoring " in shown
    assert "ranker" not in out.split("\n")[0]
    assert f"test cutoff {run_date - dt.timedelta(days=28)}" in out
    rows = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {
        "model",
        "baseline_popularity_30d",
        "baseline_repurchase_frequency",
        "baseline_item_cooccurrence",
        "baseline_recency_weighted_repurchase",
    } <= rows
    table = {}
    for line in out.splitlines():
        cells = line.split()
        try:
            table[cells[0]] = [float(cell) for cell in cells[1:]]
        except (ValueError, IndexError):
            continue  # the header and the notes
    assert 0.0 < table["model"][-1] <= 1.0  # the candidates' recall@100
    assert table["model"][1] > table["baseline_popularity_30d"][1]  # NDCG@10
    assert not settings.registry_path.exists()  # a backtest registers nothing


def test_models_train_results_reach_the_published_model_performance(backtested, monkeypatch):
    settings, run_date = backtested
    monkeypatch.setenv("SHOPFLOW_HOME", str(settings.home))
    assert main(["models", "train", "recommendations", "--date", run_date.isoformat()]) == 0
    settings.published_db_path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(settings.published_db_path)).execute("create schema exports").close()
    publish_registry_tables(settings)
    (version,) = Registry(settings).versions()
    assert (version.status, version.created_by) == ("challenger", "shopflow models train")
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    rows = con.execute(
        "select model_name, segment, value from exports.model_performance "
        "where metric = 'ndcg_at_10' and model_version = ? order by model_name, segment",
        [version.version],
    ).fetchall()
    con.close()
    names = {name for name, _, _ in rows}
    assert names == {
        "recommendations",
        "baseline_popularity_30d",
        "baseline_repurchase_frequency",
        "baseline_item_cooccurrence",
        "baseline_recency_weighted_repurchase",
    }
    assert {segment for _, segment, _ in rows} == {"all", "repeat", "first_time"}
    expected = version.metrics["results"]["model"]["ndcg_at_10:all"]
    assert ("recommendations", "all", pytest.approx(expected)) in rows


def test_backtest_without_the_training_cutoffs_says_which_command_builds_them(
    built_home, tmp_path, monkeypatch, capsys
):
    settings, run_date = built_home
    home = tmp_path / "home"
    shutil.copytree(settings.home, home, ignore=shutil.ignore_patterns("*.lock", "airflow"))
    copy = make_settings(home)
    con = duckdb.connect(str(copy.warehouse_path))
    for table in ("feat_customer_product", "feat_product_popularity"):
        con.execute(f"delete from features.{table} where cutoff_date < ?", [run_date])
    con.close()
    before = copy.warehouse_path.read_bytes()
    monkeypatch.setenv("SHOPFLOW_HOME", str(home))
    assert main(["backtest", "recommend"]) == 2
    error = capsys.readouterr().err
    assert "training cutoffs" in error and f"`shopflow retrain --date {run_date}`" in error
    assert copy.warehouse_path.read_bytes() == before  # no dbt build ran


def test_backtest_without_a_built_warehouse_says_what_to_do(settings, monkeypatch, capsys):
    monkeypatch.setenv("SHOPFLOW_HOME", str(settings.home))
    assert main(["backtest", "recommend"]) == 2
    assert "the warehouse has no features yet" in capsys.readouterr().err


def test_ranker_folds_pair_consecutive_cutoffs_with_known_labels_newest_first():
    run_date = dt.date(2024, 7, 1)
    cutoffs = [run_date - dt.timedelta(days=d) for d in (0, 28, 56, 84, 112, 140, 168)]
    frame = pd.DataFrame({"cutoff_date": cutoffs})
    inputs = types.SimpleNamespace(pairs=frame, popularity=frame)
    day = {d: run_date - dt.timedelta(days=d) for d in (28, 56, 84, 112)}
    # the scoring cutoff's labels are not known yet: the newest fold tests at D-28
    assert ranker_folds(inputs, run_date) == [(day[56], day[28]), (day[84], day[56])]
    assert ranker_folds(inputs, run_date, max_folds=3)[-1] == (day[112], day[84])
    assert len(ranker_folds(inputs, run_date, max_folds=10)) == 5
    # a cutoff only one mart has is no fold
    fewer = types.SimpleNamespace(pairs=frame, popularity=frame.iloc[:2])
    assert ranker_folds(fewer, run_date) == []
