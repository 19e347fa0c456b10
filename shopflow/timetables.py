"""Shopflow's timetables: switching a DAG on (``shopflow up``) never creates a run for a past date.

Airflow's cron timetables with ``catchup=False`` create the most recent past run as soon as a
DAG is unpaused: a surprise run for a date nobody asked for. Here a run whose time is more
than ``GRACE`` in the past when the DAG is switched on (or back on) is not created; the
first scheduled run is the upcoming one. Dates that were missed are run on purpose:
``shopflow run --date D`` or ``shopflow backfill``.

- :class:`BusinessDayTimetable` (shopflow_nightly): business date D is the UTC day
  D 00:00 -> D+1 00:00: that is the run's data interval, its logical date is D 00:00 (so
  ``ds`` is D), and the scheduled run for D starts after D+1 00:00, when the day is over (its
  first task then waits for D's landing data). A manual run with logical date D (UI or API)
  gets D's interval too, not the day before's.
- :class:`UpcomingCronTriggerTimetable` (shopflow_retrain): a cron trigger, same rule.

Both name a scheduled run after its business date (``nightly__2025-12-31``,
``retrain__2025-12-31``), as ``shopflow run`` names the runs it triggers; a date has one
run, which a rerun or a backfill clears and runs again. (A backfill run for a date that had
none is named by Airflow itself, ``backfill__<run after>``: the day after its date.)

A home whose data does not land every day (the demo shop's history, a test's) switches the
schedule off (``[airflow] schedule = false`` in ``shopflow.toml``, or ``SHOPFLOW_SCHEDULE=off``):
:func:`scheduled` then switches the timetable off. It stays the DAG's timetable (a manual run
for D still covers the day D, and Airflow's backfills, which need a periodic timetable, still
run), but it gives the scheduler no run (``next_dagrun_info`` answers None unless asked with
catch-up, as a backfill asks) and the UI shows it as off. A scheduled night for a date whose
data never lands would wait for it for hours holding the nightly's one run slot, with every
asked-for run queued behind it.

Airflow serializes a DAG's timetable only when a plugin registers its class: the
``shopflow`` plugin (``shopflow.airflow_plugin``) does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from airflow.timetables.base import DagRunInfo, DataInterval
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable

# a scheduled time this recent still runs when the DAG is switched on: the scheduler may look
# again just after a run's time, before it created that run
GRACE = dt.timedelta(hours=1)
T = TypeVar("T", "BusinessDayTimetable", "UpcomingCronTriggerTimetable")


OFF_SUMMARY = "off (schedule = false): only runs asked for"


def scheduled(timetable: T) -> T:
    """``timetable`` switched on or off as the home says (``Settings.schedule``), read when the
    DAG file is parsed: environment and shopflow.toml."""
    from shopflow.settings import load_settings

    timetable.scheduled = load_settings().schedule
    return timetable


def _switched_off(timetable, restriction) -> bool:
    """No run for the scheduler from a timetable switched off; a backfill (which iterates
    the timetable with catch-up) still gets its dates."""
    return not timetable.scheduled and not restriction.catchup


def _now():
    from airflow._shared.timezones.timezone import coerce_datetime, utcnow

    return coerce_datetime(utcnow())


class BusinessDayTimetable(CronDataIntervalTimetable):
    """Daily data intervals [D 00:00, D+1 00:00) UTC, each run after its end, run ids
    ``<run_id_prefix>__D``."""

    def __init__(self, run_id_prefix: str = "nightly", scheduled: bool = True) -> None:
        super().__init__("0 0 * * *", "UTC")
        self.run_id_prefix = run_id_prefix
        self.scheduled = scheduled

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> BusinessDayTimetable:
        return cls(data.get("run_id_prefix", "nightly"), data.get("scheduled", True))

    def serialize(self) -> dict[str, Any]:
        return {"run_id_prefix": self.run_id_prefix, "scheduled": self.scheduled}

    @property
    def summary(self) -> str:
        return super().summary if self.scheduled else OFF_SUMMARY

    def next_dagrun_info(self, *, last_automated_data_interval, restriction) -> DagRunInfo | None:
        if _switched_off(self, restriction):
            return None
        return super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )

    def generate_run_id(self, *, run_type, run_after, data_interval, **extra) -> str:
        if data_interval is None:
            return super().generate_run_id(
                run_type=run_type, run_after=run_after, data_interval=data_interval, **extra
            )
        return f"{self.run_id_prefix}__{data_interval.start.date().isoformat()}"

    def _skip_to_latest(self, earliest):
        # the interval that ends after now - GRACE: the day under way, or one that just ended
        start = self._align_to_prev(_now() - GRACE)
        if earliest is None:
            return start
        return max(start, self._align_to_next(earliest))

    def infer_manual_data_interval(self, *, run_after) -> DataInterval:
        start = self._align_to_prev(run_after)
        return DataInterval(start=start, end=self._get_next(start))


class UpcomingCronTriggerTimetable(CronTriggerTimetable):
    """A UTC cron trigger whose first run after being switched on is never a past one; run
    ids ``<run_id_prefix>__<date of the run's time>``."""

    def __init__(self, cron: str, run_id_prefix: str, scheduled: bool = True) -> None:
        super().__init__(cron, timezone="UTC")
        self.run_id_prefix = run_id_prefix
        self.scheduled = scheduled

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> UpcomingCronTriggerTimetable:
        return cls(data["expression"], data["run_id_prefix"], data.get("scheduled", True))

    def serialize(self) -> dict[str, Any]:
        return {
            "expression": self._expression,
            "run_id_prefix": self.run_id_prefix,
            "scheduled": self.scheduled,
        }

    @property
    def summary(self) -> str:
        return super().summary if self.scheduled else OFF_SUMMARY

    def generate_run_id(self, *, run_type, run_after, data_interval, **extra) -> str:
        return f"{self.run_id_prefix}__{run_after.date().isoformat()}"

    def next_dagrun_info(self, *, last_automated_data_interval, restriction) -> DagRunInfo | None:
        if _switched_off(self, restriction):
            return None
        info = super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )
        now = _now()
        if restriction.catchup or info is None or info.run_after >= now - GRACE:
            return info
        upcoming = self._get_next(now)
        if restriction.latest is not None and upcoming > restriction.latest:
            return None
        return DagRunInfo.interval(upcoming - self._interval, upcoming)
