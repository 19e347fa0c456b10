"""Runs through the scheduler: ``shopflow run`` / ``retrain`` / ``backfill``.

A business date D has one run per DAG: run id ``nightly__D`` (``retrain__D``), logical date
D 00:00 UTC and, for the nightly, data interval D 00:00 -> D+1 00:00 (the DAG's timetable
gives a scheduled or backfill run of D the same interval). A request for D

- triggers that run when D has none;
- waits for it when it is queued or running (a second ``shopflow run`` of the same date says
  so and follows the same run: one run, one log);
- clears it when it has finished, so the run is replaced, never duplicated.

The decision is taken under a per-date lock file, so two requests never both trigger or
both clear. Waits are bounded (``SHOPFLOW_RUN_TIMEOUT_MINUTES``); a dead scheduler is
noticed within seconds and reported with what to do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shopflow.deploy.api import AirflowApi, AirflowUnavailableError, ApiError
from shopflow.deploy.services import ServiceError, status, up
from shopflow.machine import nearly_full

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

RUN_ID_PREFIX = {"shopflow_nightly": "nightly", "shopflow_retrain": "retrain"}
ACTIVE = ("queued", "running")
POLL_SECONDS = 2.0
# how often the wait loop checks that the scheduler's process is still there
SERVICE_CHECK_SECONDS = 10.0
FINISHED_TI = {"success", "failed", "skipped", "upstream_failed", "removed"}
NO_ERROR_IN_LOG = "no error message in the log"


class DagRunFailedError(RuntimeError):
    """A DAG run ended failed, or could not be followed to its end."""


class MissingLandingDataError(ValueError):
    """The date's landing data is not (completely) there: the run would only wait."""


@dataclass
class RunOutcome:
    """How a followed run ended."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    url: str
    task_seconds: dict[str, float] = field(default_factory=dict)


def run_id_for(dag_id: str, day: dt.date) -> str:
    """``nightly__2025-12-31``: the run id names the business date."""
    return f"{RUN_ID_PREFIX.get(dag_id, dag_id)}__{day.isoformat()}"


def _midnight(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def run_url(settings: Settings, dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The run (or one of its tasks) in the Airflow UI."""
    url = f"{settings.airflow_url}/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}"
    return f"{url}/tasks/{task_id}" if task_id else url


def check_landing(settings: Settings, dag_id: str, days: list[dt.date]) -> None:
    """Fail fast when a nightly date's order_lines partition is not complete (no marker)."""
    if dag_id != "shopflow_nightly":
        return
    from shopflow.landing import is_complete, partition_dir

    missing = [d for d in days if not is_complete(settings.landing_dir, "order_lines", d)]
    if not missing:
        return
    first = partition_dir(settings.landing_dir, "order_lines", missing[0])
    dates = ", ".join(d.isoformat() for d in missing[:10]) + (" ..." if len(missing) > 10 else "")
    if first.is_dir() and any(first.iterdir()):
        hint = (
            f"{first} has files but no _SUCCESS marker: its writer has not finished. A "
            f"partition written before markers existed: `touch {first}/_SUCCESS` once it is "
            "complete."
        )
    else:
        hint = (
            f"no landing data for it ({first} does not exist): load it first (`shopflow load` "
            "or `shopflow generate`)."
        )
    raise MissingLandingDataError(f"no complete order_lines partition for {dates}: {hint}")


@contextlib.contextmanager
def _date_lock(settings: Settings, dag_id: str, day: dt.date) -> Iterator[None]:
    folder = settings.airflow_services_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{dag_id}_{day.isoformat()}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_run(api: AirflowApi, dag_id: str, day: dt.date) -> dict | None:
    """The run of ``dag_id`` whose logical date is D 00:00 UTC, whatever started it."""
    runs = api.get(
        f"/dags/{dag_id}/dagRuns",
        logical_date_gte=_midnight(day),
        logical_date_lte=_midnight(day),
    )["dag_runs"]
    return runs[0] if runs else None


def _trigger(api: AirflowApi, dag_id: str, day: dt.date) -> dict:
    body = {"dag_run_id": run_id_for(dag_id, day), "logical_date": _midnight(day), "conf": {}}
    if dag_id == "shopflow_nightly":
        nxt = day + dt.timedelta(days=1)
        body |= {"data_interval_start": _midnight(day), "data_interval_end": _midnight(nxt)}
    return api.post(f"/dags/{dag_id}/dagRuns", body)


def request_run(
    settings: Settings, api: AirflowApi, dag_id: str, day: dt.date, say: Callable[[str], None]
) -> str:
    """Trigger, join or clear the run of ``dag_id`` for ``day``; returns its run id."""
    with _date_lock(settings, dag_id, day):
        run = find_run(api, dag_id, day)
        if run is None:
            try:
                run = _trigger(api, dag_id, day)
                say(f"triggered {dag_id} run {run['dag_run_id']} (business date {day})")
                return run["dag_run_id"]
            except ApiError as exc:
                if exc.status != 409:
                    raise
                run = find_run(api, dag_id, day)  # requested meanwhile by someone else
                if run is None:
                    raise
        run_id, state = run["dag_run_id"], run["state"]
        if state in ACTIVE:
            say(f"{dag_id} for {day} is already {state} ({run_id}): waiting for that run")
            return run_id
        api.post(f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/clear",
                 {"dry_run": False})  # fmt: skip
        say(f"{dag_id} for {day} already ran ({run_id}, {state}): clearing it to run it again")
        return run_id


class _Reporter:
    """Task state changes: one plain line per change, or one live line on a terminal."""

    def __init__(self, say: Callable[[str], None], live: bool):
        self.say = say
        self.live = live
        self.states: dict[str, str] = {}
        self.width = 0

    def update(self, run_id: str, run_state: str, tis: list[dict]) -> None:
        for ti in tis:
            key = f"{ti['task_id']}/{ti.get('map_index', -1)}"
            state = ti.get("state")
            if state is None or self.states.get(key) == state:
                continue  # not scheduled yet, or unchanged
            self.states[key] = state
            if not self.live:
                self.say(f"  {_label(ti)}: {state}")
        if self.live:
            done = sum(1 for s in self.states.values() if s in FINISHED_TI)
            running = [
                k.split("/")[0] for k, s in self.states.items() if s in ("running", "deferred")
            ]
            line = (
                f"{run_id}: {run_state}, {done} tasks finished"
                + (f", now: {', '.join(sorted(set(running))[:3])}" if running else "")
            )[:120]
            sys.stdout.write("\r" + line.ljust(self.width))
            sys.stdout.flush()
            self.width = len(line)

    def close(self) -> None:
        if self.live and self.width:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.width = 0


def _label(ti: dict) -> str:
    if ti.get("map_index", -1) in (-1, None):
        return ti["task_id"]
    return f"{ti['task_id']}[{ti.get('rendered_map_index') or ti['map_index']}]"


def task_instances(api: AirflowApi, dag_id: str, run_id: str) -> list[dict]:
    """Every task instance of a run (mapped ones included)."""
    quoted = urllib.parse.quote(run_id, safe="")
    return api.get(f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances", limit=1000)["task_instances"]


def task_log(api: AirflowApi, dag_id: str, run_id: str, ti: dict) -> list[dict]:
    """The structured log lines of a task instance's last try, through the API server."""
    quoted = urllib.parse.quote(run_id, safe="")
    path = (
        f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{ti['task_id']}/logs/"
        f"{max(ti.get('try_number') or 1, 1)}"
    )
    content = api.get(path, map_index=ti.get("map_index", -1), full_content="true")["content"]
    return [line if isinstance(line, dict) else {"event": str(line)} for line in content]


def error_message(lines: list[dict]) -> str:
    """The exception a task failed with, from its structured log."""
    for line in reversed(lines):
        for detail in reversed(line.get("error_detail") or []):
            if isinstance(detail, dict) and detail.get("exc_value") is not None:
                return f"{detail.get('exc_type', 'Error')}: {detail['exc_value']}"
    errors = [
        str(line.get("event")) for line in lines if line.get("level") in ("error", "critical")
    ]
    return errors[-1] if errors else NO_ERROR_IN_LOG


def failure_report(settings: Settings, api: AirflowApi, dag_id: str, run_id: str) -> str:
    """Each failed task: its error message and its page in the UI."""
    failed = [ti for ti in task_instances(api, dag_id, run_id) if ti.get("state") == "failed"]
    if not failed:
        return f"no task failed; see {run_url(settings, dag_id, run_id)}"
    parts = []
    for ti in failed:
        try:
            message = error_message(task_log(api, dag_id, run_id, ti))
        except (ApiError, AirflowUnavailableError) as exc:
            message = f"(log not readable: {exc})"
        if message == NO_ERROR_IN_LOG or message.startswith("(log not readable"):
            # a task log on a full disk is cut before the error: say the likely cause
            full = nearly_full(settings.airflow_home, "Airflow writes the task logs")
            message += f"; {full}" if full else ""
        url = run_url(settings, dag_id, run_id, ti["task_id"])
        if ti.get("map_index", -1) not in (-1, None):
            url += f"/mapped/{ti['map_index']}"
        parts.append(f"task {_label(ti)} failed: {message}\n  log: {url}")
    return "\n".join(parts)


def _check_scheduler(
    settings: Settings,
    say: Callable[[str], None] | None = None,
    told: set[str] | None = None,
) -> None:
    """Raise ServiceError when the run cannot progress (the scheduler, the API server or every
    Celery worker stopped); say once (``say``, ``told``) that one Celery worker stopped."""
    states = status(settings)
    dead = [s for s in states if not s.alive and s.name in ("scheduler", "api-server")]
    if dead:
        names = ", ".join(s.name for s in dead)
        raise ServiceError(
            f"the Airflow {names} stopped (see {dead[0].log}); the run is not progressing. "
            "Run `shopflow up` to restart it: the run continues where it stopped, and "
            "`shopflow run` again follows it."
        )
    workers = [s for s in states if s.name.startswith("worker-")]
    if workers and not any(s.alive for s in workers):
        raise ServiceError(
            f"every Celery worker stopped ({', '.join(s.name for s in workers)}; see "
            f"{workers[0].log}): no task can run. `shopflow up --executor celery` starts them "
            "again; the run continues where it stopped, and `shopflow run` again follows it."
        )
    for worker in workers:
        if say is not None and told is not None and not worker.alive and worker.name not in told:
            told.add(worker.name)
            say(
                f"{worker.name} stopped (see {worker.log}). A task it was running is failed "
                "by the scheduler once its heartbeat is missing for "
                "[scheduler] task_instance_heartbeat_timeout (300 s by default), then "
                "retried on a worker that serves its queue; the warehouse pool keeps a second "
                "writer from starting before that. `shopflow up --executor celery` starts "
                f"{worker.name} again."
            )


def task_seconds(tis: list[dict]) -> dict[str, float]:
    """Seconds per task (mapped tasks: first start to last end)."""
    spans: dict[str, list[dt.datetime]] = {}
    for ti in tis:
        if ti.get("start_date") and ti.get("end_date"):
            start = dt.datetime.fromisoformat(ti["start_date"])
            end = dt.datetime.fromisoformat(ti["end_date"])
            span = spans.setdefault(ti["task_id"], [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
    return {t: round((e - s).total_seconds(), 2) for t, (s, e) in spans.items()}


def _blocker(settings: Settings, api: AirflowApi, dag_id: str, run: dict) -> str:
    """A running run another one waits for; what it waits for when that is its landing data
    (a scheduled night holds the one run slot while its sensor waits, up to 12 hours)."""
    from shopflow.landing import marker_path

    run_id = run["dag_run_id"]
    waiting = [
        ti
        for ti in task_instances(api, dag_id, run_id)
        if ti["task_id"] == "wait_for_landing" and ti["state"] in ("deferred", "up_for_reschedule")
    ]
    if not waiting or not run.get("logical_date"):
        return run_id
    day = dt.date.fromisoformat(run["logical_date"][:10])
    marker = marker_path(settings.landing_dir, "order_lines", day)
    return (
        f"{run_id}, which waits for its landing data ({marker}): load that date "
        f"(shopflow load) or mark {run_id} failed in the UI to let the others run"
    )


def follow_run(
    settings: Settings,
    api: AirflowApi,
    dag_id: str,
    run_id: str,
    say: Callable[[str], None] = print,
    live: bool | None = None,
) -> RunOutcome:
    """Wait for a run to finish, reporting task state changes; raises DagRunFailedError when
    it fails (with each failed task's message and URL) or does not finish in time."""
    live = sys.stdout.isatty() if live is None else live
    reporter = _Reporter(say, live)
    started = time.monotonic()
    deadline = started + settings.run_timeout_minutes * 60
    checked = started
    quoted = urllib.parse.quote(run_id, safe="")
    told_queued = False
    told_stopped: set[str] = set()  # Celery workers already reported stopped
    try:
        while True:
            run = api.get(f"/dags/{dag_id}/dagRuns/{quoted}")
            tis = task_instances(api, dag_id, run_id)
            reporter.update(run_id, run["state"], tis)
            if run["state"] == "success":
                reporter.close()
                return RunOutcome(
                    dag_id, run_id, "success", time.monotonic() - started,
                    run_url(settings, dag_id, run_id), task_seconds(tis),
                )  # fmt: skip
            if run["state"] == "failed":
                reporter.close()
                report = failure_report(settings, api, dag_id, run_id)
                raise DagRunFailedError(f"{dag_id} run {run_id} failed.\n{report}")
            if run["state"] == "queued" and not told_queued and time.monotonic() - started > 10:
                others = api.get(f"/dags/{dag_id}/dagRuns", state=["running"])["dag_runs"]
                if others:
                    reporter.close()
                    blockers = "; ".join(_blocker(settings, api, dag_id, r) for r in others)
                    say(f"{run_id} is queued behind {blockers} (one run at a time)")
                    told_queued = True
            now = time.monotonic()
            if now - checked > SERVICE_CHECK_SECONDS:
                # a live line ends before a message
                _check_scheduler(settings, lambda text: (reporter.close(), say(text)), told_stopped)
                checked = now
            if now > deadline:
                reporter.close()
                raise DagRunFailedError(
                    f"{dag_id} run {run_id} is still {run['state']} after "
                    f"{settings.run_timeout_minutes} min (SHOPFLOW_RUN_TIMEOUT_MINUTES); it goes "
                    f"on in Airflow: {run_url(settings, dag_id, run_id)}"
                )
            time.sleep(POLL_SECONDS)
    except AirflowUnavailableError as exc:
        reporter.close()
        _check_scheduler(settings)
        raise DagRunFailedError(
            f"lost the Airflow API server while following {run_id}: {exc}"
        ) from None


def run_dag(
    settings: Settings,
    dag_id: str,
    day: dt.date,
    *,
    say: Callable[[str], None] = print,
    live: bool | None = None,
) -> RunOutcome:
    """Run ``dag_id`` for business date ``day`` through the scheduler and wait for it.

    Starts the services when they are not up. Raises MissingLandingDataError at once when a
    nightly date has no complete landing data, DagRunFailedError when the run fails."""
    check_landing(settings, dag_id, [day])
    up(settings, say)
    api = AirflowApi(settings)
    run_id = request_run(settings, api, dag_id, day, say)
    say(f"following {run_url(settings, dag_id, run_id)}")
    return follow_run(settings, api, dag_id, run_id, say, live)


def backfill(
    settings: Settings,
    dag_id: str,
    start: dt.date,
    end: dt.date,
    *,
    say: Callable[[str], None] = print,
) -> list[dict]:
    """Airflow's own backfill of ``dag_id`` for the business dates start..end (every run
    replaced, one at a time, oldest first); waits and reports each run's state. Returns the
    runs; raises DagRunFailedError when one failed."""
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    check_landing(settings, dag_id, days)
    up(settings, say)
    api = AirflowApi(settings)
    created = api.post(
        "/backfills",
        {
            "dag_id": dag_id,
            "from_date": _midnight(start),
            "to_date": _midnight(end),
            "run_backwards": False,
            "dag_run_conf": {},
            "reprocess_behavior": "completed",  # a date that already ran is replaced
            "max_active_runs": 1,
        },
    )
    say(f"backfill {created['id']} of {dag_id}: {start} .. {end} ({len(days)} dates)")
    started = time.monotonic()
    deadline = started + settings.run_timeout_minutes * 60 * max(1, len(days))
    seen: dict[str, str] = {}
    checked = started
    while True:
        runs = api.get(
            f"/dags/{dag_id}/dagRuns",
            logical_date_gte=_midnight(start),
            logical_date_lte=_midnight(end),
            order_by="logical_date",
            limit=1000,
        )["dag_runs"]
        for run in runs:
            if seen.get(run["dag_run_id"]) != run["state"]:
                seen[run["dag_run_id"]] = run["state"]
                # Airflow names a new backfill run after its run-after time, the day after
                # its business date: say which date it is
                day = (run.get("logical_date") or "")[:10]
                say(f"  {day} ({run['dag_run_id']}): {run['state']}")
        info = api.get(f"/backfills/{created['id']}")
        finished = all(r["state"] not in ACTIVE for r in runs) and len(runs) >= len(days)
        if info.get("completed_at") or finished:
            break
        now = time.monotonic()
        if now - checked > SERVICE_CHECK_SECONDS:
            _check_scheduler(settings)
            checked = now
        if now > deadline:
            raise DagRunFailedError(
                f"backfill {created['id']} has not finished in time; it goes on in Airflow: "
                f"{settings.airflow_url}/dags/{dag_id}"
            )
        time.sleep(POLL_SECONDS)
    failed = [r for r in runs if r["state"] == "failed"]
    if failed:
        raise DagRunFailedError(
            "\n".join(
                f"{r['dag_run_id']} failed.\n"
                + failure_report(settings, api, dag_id, r["dag_run_id"])
                for r in failed
            )
        )
    return runs
