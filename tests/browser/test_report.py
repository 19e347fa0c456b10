"""The nightly HTML report in headless Chromium: every chart is drawn (plotly renders SVG),
offline (the page is opened from disk; plotly.js is inlined). The screenshot is the README's
docs/images/report-overview.png (copied there when SHOPFLOW_UPDATE_DOCS_IMAGES=1).

Screenshots go to tests/browser/screenshots/ (or $SHOPFLOW_BROWSER_SCREENSHOTS).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shopflow.report import report_path, write_report
from tests.browser.ui import CHROMEDRIVER, CHROMIUM, Browser
from tests.feedback.conftest import published  # noqa: F401  (the fixture)
from tests.feedback.helpers import build_live

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(
    os.environ.get("SHOPFLOW_BROWSER_SCREENSHOTS") or Path(__file__).parent / "screenshots"
)
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "report-overview.png"


def test_the_report_draws_every_chart(published):  # noqa: F811
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: run scripts/install_browser.sh (make test-browser)")
    settings, last = published
    build_live(settings, last)
    written = write_report(settings, last)
    browser = Browser("file://", SCREENSHOTS)
    try:
        browser.open(str(report_path(settings, last)))
        browser.wait_text("Forecasts of the top products")

        def drawn(driver):
            # a drawn plotly chart is an SVG with at least one trace group in it
            return (
                driver.execute_script(
                    "return Array.from(document.querySelectorAll('.chart .js-plotly-plot'))"
                    ".filter(p => p.querySelector('svg.main-svg g.trace')).length"
                )
                == written["charts"]
                and driver
            )

        browser.wait(drawn, f"{written['charts']} drawn charts")
        counts = browser.driver.execute_script(
            "return Array.from(document.querySelectorAll('.chart .js-plotly-plot'))"
            ".map(p => p.querySelectorAll('svg.main-svg path').length)"
        )
        assert all(count > 0 for count in counts), counts
        errors = [
            entry for entry in browser.driver.get_log("browser") if entry.get("level") == "SEVERE"
        ]
        assert errors == [], errors
        shot = browser.screenshot("report-overview")
    finally:
        browser.close()
    if os.environ.get("SHOPFLOW_UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, DOCS_IMAGE)
