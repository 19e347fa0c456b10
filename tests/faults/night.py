"""One nightly run in this process, step by step, as the DAG runs them (no scheduler).

``python -m tests.faults.night YYYY-MM-DD [FIRST_STEP]`` on ``$SHOPFLOW_HOME``; a failpoint
``night.before.<step>`` (``$SHOPFLOW_FAILPOINTS``) kills the process at that task boundary.
A failed night prints its summary (the cause first, then each step's state) to stderr before
raising, so that it survives a full disk.
"""

from __future__ import annotations

import datetime as dt
import sys

from shopflow.failpoints import failpoint
from shopflow.jobs.rollback import NothingToCheck
from shopflow.jobs.steps import NIGHTLY_STEPS
from shopflow.machine import explain
from shopflow.settings import load_settings
from shopflow.summary import emit_summary


def night_summary(run_date: dt.date, names: list[str], states: dict[str, str], cause) -> str:
    """The cause of a failed night on its first line, then one line per step."""
    failed = next(name for name in names if states.get(name) == "failed")
    lines = [f"night {run_date} failed at {failed}: {cause}"]
    lines += [f"  {name}: {states.get(name, 'not run')}" for name in names]
    return "\n".join(lines)


def run_night(settings, run_date: dt.date, start: str | None = None) -> None:
    """Every nightly step for ``run_date`` in DAG order (from ``start``, as Airflow retries a
    killed task and runs what follows); a failure stops the night."""
    settings.ensure_dirs()
    names = list(NIGHTLY_STEPS)
    names = names[names.index(start) if start else 0 :]
    states: dict[str, str] = {}
    for name in names:
        step = NIGHTLY_STEPS[name]
        failpoint(f"night.before.{name}")
        try:
            step(settings, run_date)
        except NothingToCheck:
            pass
        except Exception as exc:
            states[name] = "failed"
            emit_summary(night_summary(run_date, names, states, explain(exc) or exc))
            raise
        states[name] = "success"
    failpoint("night.end")


if __name__ == "__main__":
    run_night(load_settings(), dt.date.fromisoformat(sys.argv[1]), *sys.argv[2:3])
