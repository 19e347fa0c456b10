"""The nightly HTML report: written from the live tables, plotly.js inlined once, served by
the on-call app and reachable from a DAG run's id."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from shopflow.oncall_app import create_app, run_business_date
from shopflow.report import report_path, write_report
from tests.feedback.helpers import build_live

PLOTLY_BANNER = "plotly.js v"


def test_report_is_self_contained_and_served(published):
    settings, last = published
    build_live(settings, last)
    written = write_report(settings, last)
    page = report_path(settings, last).read_text(encoding="utf-8")
    assert written["path"] == str(report_path(settings, last))
    # 4 fan charts, 2 live accuracy lines, outcomes by reason (no registry events here)
    assert written["charts"] == 7
    assert page.count(PLOTLY_BANNER) == 1, "plotly.js must be inlined exactly once"
    assert "<script src=" not in page  # nothing fetched when the page is opened
    for heading in (
        "Forecasts of the top products",
        "Live accuracy",
        "Recommendation outcomes by reason",
        "Data quality of the night",
        "Model registry timeline",
    ):
        assert heading in page
    for model in ("baseline_mean_28", "baseline_popularity_30d", "recommendations"):
        assert model in page

    client = TestClient(create_app(lambda: settings))
    day = last.isoformat()
    assert day in client.get("/reports/").text
    served = client.get(f"/reports/{day}/")
    assert served.status_code == 200 and served.text == page
    follow = client.get(f"/reports/run/nightly__{day}", follow_redirects=False)
    assert follow.headers["location"].endswith(f"/reports/{day}/")
    assert "No report for 1999-01-01" in client.get("/reports/1999-01-01/").text
    assert client.get("/reports/..%2F..%2Fetc/").status_code == 404


def test_run_ids_map_to_their_business_date():
    assert run_business_date("nightly__2025-05-30") == dt.date(2025, 5, 30)
    assert run_business_date("backfill__2025-05-31T00:00:00+00:00") == dt.date(2025, 5, 30)
    assert run_business_date("no date") is None


def test_only_the_latest_reports_are_kept(tmp_path):
    from dataclasses import replace

    from shopflow.report import prune_reports
    from shopflow.settings import load_settings

    settings = replace(load_settings({"SHOPFLOW_HOME": str(tmp_path)}), reports_kept=2)
    days = [dt.date(2025, 5, d) for d in (28, 29, 30)]
    for day in days:
        report_path(settings, day).parent.mkdir(parents=True)
        report_path(settings, day).write_text("report")
    (settings.reports_dir / "notes").mkdir()  # not a report: left alone
    assert prune_reports(settings) == ["2025-05-28"]
    assert sorted(p.name for p in settings.reports_dir.iterdir()) == [
        "2025-05-29",
        "2025-05-30",
        "notes",
    ]
