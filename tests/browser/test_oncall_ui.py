"""The on-call path in the Airflow UI, in a real (headless) browser.

One deployment of a tiny generated shop (`shopflow up`), then what on-call does at 3 a.m.:
log in; see both DAGs, switched on; the demo night green and a task's log readable; a bad
landing file for the next date fails `ingest_landing` with a log that names the file, the rule
and the runbook, whose links (runbook, Data Docs) open in the browser; after the file is
fixed, clearing the task in the UI reruns the night to green.

Run with `make test-browser` (installs Debian's chromium and chromium-driver first).
Screenshots go to tests/browser/screenshots/ (or $SHOPFLOW_BROWSER_SCREENSHOTS).
The tests share one deployment and run in file order: each builds on the one before.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from shopflow.landing import mark_complete
from tests.browser.deployment import ADMIN, NIGHTLY, SPEC, Deployment, run_id
from tests.browser.ui import CHROMEDRIVER, CHROMIUM, Browser, wait_until

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(
    os.environ.get("SHOPFLOW_BROWSER_SCREENSHOTS") or Path(__file__).parent / "screenshots"
)
DAY = SPEC.start + dt.timedelta(days=SPEC.days - 2)  # the demo night
NEXT = DAY + dt.timedelta(days=1)  # the night whose order lines arrive broken
BAD_FILE = "order_lines.csv"
NEGATIVE_PRICES = 4  # of 25 lines: more than 5 % quarantined blocks the partition
# a generous bound for one nightly run (the first trains the models): only a hung run hits it
RUN_SECONDS = int(os.environ.get("SHOPFLOW_BROWSER_RUN_SECONDS") or 1800)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A tiny shop up to DAY, the nightly run for DAY done; NEXT's order lines held back."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: run scripts/install_browser.sh (make test-browser)")
    root = tmp_path_factory.mktemp("browser")
    deployment = Deployment(root / "home")
    deployment.must(
        "generate",
        *("--customers", str(SPEC.customers), "--products", str(SPEC.products)),
        *("--days", str(SPEC.days), "--start", SPEC.start.isoformat(), "--seed", str(SPEC.seed)),
    )
    deployment.held_back = deployment.hold_back(NEXT, root / "stash")
    try:
        deployment.must("up", timeout=600)
        deployment.must("run", "--date", DAY.isoformat(), timeout=RUN_SECONDS)
        yield deployment
    finally:
        down = deployment.shopflow("down", timeout=120)
        print(down.stdout, down.stderr)


@pytest.fixture(scope="module")
def browser(deployment):
    browser = Browser(deployment.url, SCREENSHOTS)
    try:
        browser.login(ADMIN, deployment.password)
        yield browser
    finally:
        browser.close()


def test_both_dags_are_listed_and_switched_on(browser):
    browser.open("/dags")
    browser.wait_text("shopflow_retrain")
    assert "shopflow_nightly" in browser.page_text()
    browser.screenshot("01-dags")
    for dag_id in (NIGHTLY, "shopflow_retrain"):
        browser.open(f"/dags/{dag_id}")
        toggle = browser.find("[data-testid=toggle-pause]", f"{dag_id}'s on/off switch")
        # the switch is "checked" when the DAG is unpaused
        browser.wait(
            lambda d, t=toggle: t.get_attribute("data-state") == "checked",
            f"{dag_id} to show as unpaused",
        )


def test_the_demo_night_is_green_and_a_task_log_is_readable(browser, deployment):
    browser.open(f"/dags/{NIGHTLY}/runs/{run_id(DAY)}")
    browser.wait_text("check_published")
    assert deployment.run_state(run_id(DAY)) == "success"
    browser.wait(lambda d: "Success" in browser.page_text(), "the run's Success badge")
    browser.screenshot("02-demo-night-green")

    log = browser.open_task_log(
        NIGHTLY, run_id(DAY), "publish_exports", f"publish_exports for {DAY}"
    )
    assert "rows" in log  # the step's result: what was published
    browser.screenshot("03-task-log")


def test_a_bad_landing_file_fails_with_file_rule_runbook_and_data_docs(browser, deployment):
    # the shop sends NEXT's order lines with negative prices on 4 of 25 lines
    lines = pd.read_parquet(next(deployment.held_back.glob("*.parquet")))
    broken = lines.copy()
    broken.loc[broken.index[:NEGATIVE_PRICES], "unit_price"] = -9.99
    target = deployment.order_lines_dir(NEXT)
    target.mkdir(parents=True, exist_ok=True)
    broken.to_csv(target / BAD_FILE, index=False)
    mark_complete(deployment.home / "landing", "order_lines", NEXT)  # the upload is complete

    failed = deployment.shopflow("run", "--date", NEXT.isoformat(), timeout=RUN_SECONDS)
    assert failed.returncode != 0, failed.stdout
    states = deployment.task_states(run_id(NEXT))
    assert states["ingest_landing"] == "failed", states
    assert states["check_published"] == "skipped", states  # nothing to check, not a failure

    log = browser.open_task_log(
        NIGHTLY, run_id(NEXT), "ingest_landing", "Data quality gate stopped the run"
    )
    browser.scroll_log_to("What to do:")
    browser.screenshot("04-failed-task-log")
    # the task's failure message, from its first line to the last link
    failure = log.split("failed on data (not retried)", 1)[1].split("Data Docs index:", 1)[0]
    assert f"landing/order_lines/{NEXT}/{BAD_FILE}" in failure  # the file
    assert "unit_price is never negative: 4 rows break it" in failure  # the rule, in plain words
    assert "What to do: " in failure
    runbook = re.search(rf"Runbook: ({re.escape(deployment.url)}/shopflow/docs/\S+)", failure)
    page = re.search(
        rf"Data Docs: ({re.escape(deployment.url)}/shopflow/data-docs/\S+\.html)", failure
    )
    assert runbook and page, failure
    # links a browser opens, not file paths; the one file named is the shop's configuration
    # (the setting that changes the rule), which is edited, not opened in a browser
    config_file = str(deployment.home / "shopflow.toml")
    assert str(deployment.home) not in failure.replace(config_file, "shopflow.toml")

    # the log's links open in the same signed-in browser: the runbook, at its section ...
    assert browser.follow_log_link("/shopflow/docs/") == runbook.group(1)
    anchor = runbook.group(1).split("#", 1)[1]
    browser.find(f"[id='{anchor}']", "the runbook section")
    assert "When the quality gate fails" in browser.page_text()
    browser.screenshot("05-runbook")

    # ... and the Data Docs page of the failed validation
    browser.back_to_first_tab()
    browser.open_task_log(NIGHTLY, run_id(NEXT), "ingest_landing", "Data Docs:")
    assert browser.follow_log_link("/shopflow/data-docs/validations/") == page.group(1)
    browser.wait(
        lambda d: (
            "landing_partitions" in browser.page_text()
            or "landing_order_lines" in browser.page_text()
        ),
        "the Data Docs validation page",
    )
    browser.screenshot("06-data-docs")
    browser.back_to_first_tab()


def test_clearing_the_fixed_task_in_the_ui_reruns_it_to_green(browser, deployment):
    # the shop re-sends the day correctly: the original file replaces the broken one
    target = deployment.order_lines_dir(NEXT)
    (target / BAD_FILE).unlink()
    for original in sorted(deployment.held_back.iterdir(), key=lambda p: p.name == "_SUCCESS"):
        (target / original.name).write_bytes(original.read_bytes())  # data, then the marker

    browser.open(browser.task_path(NIGHTLY, run_id(NEXT), "ingest_landing"))
    browser.wait(lambda d: browser.task_state() == "Failed", "ingest_landing to show Failed")
    # the "clear" button (shift+c); its dialog clears the task and everything downstream
    browser.click(browser.find("button[aria-label*='to clear']", "the task's Clear button"))
    confirm = browser.wait(
        lambda d: d.find_element("xpath", "//button[normalize-space()='Confirm']"),
        "the Clear dialog's Confirm button",
    )
    browser.wait_text("Affected Tasks")
    browser.screenshot("07-clear-dialog")
    browser.click(confirm)

    wait_until(
        lambda: deployment.run_state(run_id(NEXT)) == "success",
        f"the cleared run for {NEXT} to succeed (tasks: {deployment.task_states(run_id(NEXT))})",
        timeout=RUN_SECONDS,
    )
    browser.open(browser.task_path(NIGHTLY, run_id(NEXT), "ingest_landing"))
    browser.wait(lambda d: browser.task_state() == "Success", "ingest_landing to show Success")
    browser.open(f"/dags/{NIGHTLY}/runs/{run_id(NEXT)}")
    browser.wait_text("check_published")
    browser.screenshot("08-rerun-green")
