"""kill -9 at every task boundary of a night (and inside publish), on the tiny shop: after
each kill what analysts see is yesterday's exports or the new date whole; the killed task
is run again as Airflow's retry does, and a plain rerun of the night converges to the rows
of a clean night."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from shopflow.jobs.steps import NIGHTLY_STEPS
from tests.conftest import REPO_ROOT
from tests.faults.helpers import assert_consistent, visible
from tests.faults.night import run_night
from tests.ml.lifecycle_helpers import WEAK, copy_home, promote_trained

pytestmark = pytest.mark.faults

# every task boundary, plus the moment between building a snapshot and making it visible
BOUNDARIES = [
    *(f"night.before.{name}" for name in list(NIGHTLY_STEPS)[1:]),
    "night.end",
]
_AFTER_PUBLISH = list(NIGHTLY_STEPS)[list(NIGHTLY_STEPS).index("publish_exports") + 1]
BOUNDARIES.insert(BOUNDARIES.index(f"night.before.{_AFTER_PUBLISH}"), "publish.before_swap")


def _night_in_subprocess(home, run_date, start, failpoint):
    env = {**os.environ, "SHOPFLOW_HOME": str(home), "SHOPFLOW_FAILPOINTS": failpoint}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faults.night",
            run_date.isoformat(),
            *([start] if start else []),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def nights(built_home, tmp_path_factory):
    """D published with small champions; night D+1 run clean in a copy."""
    root = tmp_path_factory.mktemp("night_faults")
    settings, day = copy_home(built_home, root / "base")
    promote_trained(settings, day, WEAK, reason="champion for the fault tests")
    run_night(settings, day, start="score_forecast")  # the warehouse is built as of D
    clean, _ = copy_home((settings, day), root / "clean")
    next_day = day + dt.timedelta(days=1)
    run_night(clean, next_day)
    return {"base": settings, "clean": clean, "day": next_day, "root": root}


def test_kill_at_every_task_boundary_then_rerun_converges(nights):
    settings, _ = copy_home((nights["base"], nights["day"]), nights["root"] / "killed")
    home = settings.home
    before, after = visible(nights["base"].home), visible(nights["clean"].home)
    start = None
    for point in BOUNDARIES:
        result = _night_in_subprocess(home, nights["day"], start, point)
        assert result.returncode == -9, f"{point}: {result.stderr[-3000:]}"
        seen = assert_consistent(home)
        assert seen in (before, after), f"killed at {point}: a partial publish is visible"
        if point.startswith("night.before."):
            start = point.removeprefix("night.before.")
        elif point == "publish.before_swap":
            assert seen == before, "killed before the swap, yet the new date is visible"
            start = "publish_exports"
    assert visible(home) == after
    # a plain rerun of the whole night changes nothing more
    run_night(settings, nights["day"])
    assert visible(home) == after


def test_two_nights_at_once_for_the_same_date_converge(nights):
    """Two processes run the model half of the same night at once (a manual run during the
    scheduled one): the locks serialise their writes, and the result is a clean night's."""
    settings, _ = copy_home((nights["base"], nights["day"]), nights["root"] / "twice")
    # the warehouse as of the date first, so both start from the same inputs
    run_night(settings, nights["day"])
    env = {**os.environ, "SHOPFLOW_HOME": str(settings.home), "SHOPFLOW_FAILPOINTS": ""}
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.faults.night",
                nights["day"].isoformat(),
                "score_forecast",
            ],
            cwd=REPO_ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-3000:]
    assert assert_consistent(settings.home) == visible(nights["clean"].home)
