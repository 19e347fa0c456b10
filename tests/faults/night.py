"""One nightly run in this process, step by step, as the DAG runs them (no scheduler).

``python -m tests.faults.night YYYY-MM-DD [FIRST_STEP]`` on ``$SHOPFLOW_HOME``; a failpoint
``night.before.<step>`` (``$SHOPFLOW_FAILPOINTS``) kills the process at that task boundary.
"""

from __future__ import annotations

import datetime as dt
import sys

from shopflow.failpoints import failpoint
from shopflow.jobs.rollback import NothingToCheck
from shopflow.jobs.steps import NIGHTLY_STEPS
from shopflow.settings import load_settings


def run_night(settings, run_date: dt.date, start: str | None = None) -> None:
    """Every nightly step for ``run_date`` in DAG order (from ``start``, as Airflow retries a
    killed task and runs what follows); a failure stops the night."""
    settings.ensure_dirs()
    names = list(NIGHTLY_STEPS)
    for name in names[names.index(start) if start else 0 :]:
        step = NIGHTLY_STEPS[name]
        failpoint(f"night.before.{name}")
        try:
            step(settings, run_date)
        except NothingToCheck:
            pass
    failpoint("night.end")


if __name__ == "__main__":
    run_night(load_settings(), dt.date.fromisoformat(sys.argv[1]), *sys.argv[2:3])
