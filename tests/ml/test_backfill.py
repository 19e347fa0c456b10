"""Time-true backfills: a date scored again after later nights (with a newer champion since)
is scored with the version that served it, and publishes exactly the rows it published."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from shopflow.dbt import build_warehouse
from shopflow.jobs.steps import publish, score_forecast, score_recommendations
from shopflow.quality import validate_predictions
from tests.ml.lifecycle_helpers import MID, WEAK, copy_home, promote_trained


def _night(settings, day):
    score_forecast(settings, day)
    score_recommendations(settings, day)
    validate_predictions(settings, day)
    publish(settings, day)


def _published(settings, day):
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        return {
            table: con.execute(
                f"select * exclude (run_date) from exports.{table} where run_date = ? order by all",
                [day],
            ).fetchall()
            for table in ("recommendations", "demand_forecast")
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def backfilled(built_home, tmp_path_factory):
    """Night D with weak champions; better ones promoted; night D+1; then D backfilled."""
    settings, day = copy_home(built_home, tmp_path_factory.mktemp("backfill"))
    weak = promote_trained(settings, day, WEAK, reason="the champions of night D")
    _night(settings, day)
    original = _published(settings, day)
    better = promote_trained(settings, day, MID, reason="promoted after night D")
    next_day = day + dt.timedelta(days=1)
    build_warehouse(settings, next_day)
    _night(settings, next_day)
    after_next = _published(settings, next_day)
    build_warehouse(settings, day)  # the backfill of D: the warehouse as of D, then the models
    _night(settings, day)
    return {
        "weak": weak,
        "better": better,
        "original": original,
        "after_next": after_next,
        "backfilled": _published(settings, day),
    }


def test_the_later_night_used_the_newer_champions(backfilled):
    versions = {row[-1] for row in backfilled["after_next"]["demand_forecast"]}
    assert versions == {backfilled["better"]["demand_forecast"]}


def test_a_backfill_reproduces_the_rows_that_night_published(backfilled):
    assert backfilled["backfilled"]["demand_forecast"] == backfilled["original"]["demand_forecast"]
    assert backfilled["backfilled"]["recommendations"] == backfilled["original"]["recommendations"]
    versions = {row[-1] for row in backfilled["backfilled"]["recommendations"]}
    assert versions == {backfilled["weak"]["recommendations"]}
