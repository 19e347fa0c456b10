"""Shopflow's timetables: business-day intervals, and no run for a past date when switched on."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from shopflow.timetables import GRACE, BusinessDayTimetable, UpcomingCronTriggerTimetable

SINCE_2000 = pendulum.datetime(2000, 1, 1, tz="UTC")


def _utc(*args) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="UTC")


def test_a_manual_run_for_d_covers_the_day_d():
    interval = BusinessDayTimetable().infer_manual_data_interval(run_after=_utc(2025, 12, 31))
    assert (interval.start, interval.end) == (_utc(2025, 12, 31), _utc(2026, 1, 1))


@pytest.mark.parametrize(
    ("now", "first_day"),
    [
        (_utc(2026, 12, 5, 18, 15), _utc(2026, 12, 5)),  # the day under way, run after it ends
        (_utc(2026, 12, 5, 0, 20), _utc(2026, 12, 4)),  # a day that ended within GRACE still runs
    ],
)
def test_switched_on_the_nightly_schedules_no_past_day(monkeypatch, now, first_day):
    monkeypatch.setattr("shopflow.timetables._now", lambda: now)
    info = BusinessDayTimetable().next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=SINCE_2000, latest=None, catchup=False),
    )
    assert info.data_interval == DataInterval(first_day, first_day + dt.timedelta(days=1))
    assert info.logical_date == first_day
    assert info.run_after == first_day + dt.timedelta(days=1)
    assert info.run_after >= now - GRACE


def test_after_a_night_the_next_is_the_following_day(monkeypatch):
    monkeypatch.setattr("shopflow.timetables._now", lambda: _utc(2026, 12, 6, 0, 0, 30))
    info = BusinessDayTimetable().next_dagrun_info(
        last_automated_data_interval=DataInterval(_utc(2026, 12, 4), _utc(2026, 12, 5)),
        restriction=TimeRestriction(earliest=SINCE_2000, latest=None, catchup=False),
    )
    assert info.data_interval == DataInterval(_utc(2026, 12, 5), _utc(2026, 12, 6))


def test_switched_on_the_weekly_retrain_waits_for_the_upcoming_sunday(monkeypatch):
    now = _utc(2026, 12, 5, 18, 15)  # a Saturday
    monkeypatch.setattr("shopflow.timetables._now", lambda: now)
    info = UpcomingCronTriggerTimetable("0 5 * * 0", "retrain").next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=SINCE_2000, latest=None, catchup=False),
    )
    assert info.run_after == _utc(2026, 12, 6, 5)


def test_timetables_serialize_round_trip():
    day = BusinessDayTimetable.deserialize(BusinessDayTimetable().serialize())
    assert isinstance(day, BusinessDayTimetable)
    weekly = UpcomingCronTriggerTimetable("0 5 * * 0", "retrain")
    again = UpcomingCronTriggerTimetable.deserialize(weekly.serialize())
    assert again == weekly and again.run_id_prefix == "retrain"


def test_scheduled_runs_are_named_after_their_business_date():
    from airflow.utils.types import DagRunType

    day = BusinessDayTimetable("nightly")
    interval = day.infer_manual_data_interval(run_after=_utc(2025, 12, 31))
    run_id = day.generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=_utc(2026, 1, 1), data_interval=interval
    )
    assert run_id == "nightly__2025-12-31"
    weekly = UpcomingCronTriggerTimetable("0 5 * * 0", "retrain")
    run_id = weekly.generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=_utc(2026, 12, 6, 5), data_interval=None
    )
    assert run_id == "retrain__2026-12-06"


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        (None, None, True),  # shipped: scheduled
        ("[airflow]\nschedule = false\n", None, False),  # the demo home's file
        ("[airflow]\nschedule = false\n", "on", True),  # the environment wins
        (None, "off", False),
    ],
)
def test_the_home_switches_the_schedule_off(tmp_path, monkeypatch, toml, env, expected):
    from shopflow.timetables import scheduled

    if toml:
        (tmp_path / "shopflow.toml").write_text(toml)
    monkeypatch.setenv("SHOPFLOW_HOME", str(tmp_path))
    if env is None:
        monkeypatch.delenv("SHOPFLOW_SCHEDULE", raising=False)
    else:
        monkeypatch.setenv("SHOPFLOW_SCHEDULE", env)
    assert scheduled(BusinessDayTimetable()).scheduled is expected
    assert scheduled(UpcomingCronTriggerTimetable("0 5 * * 0", "retrain")).scheduled is expected


@pytest.mark.parametrize(
    "timetable",
    [
        BusinessDayTimetable(scheduled=False),
        UpcomingCronTriggerTimetable("0 5 * * 0", "retrain", scheduled=False),
    ],
)
def test_switched_off_no_run_is_scheduled_but_backfills_still_get_their_dates(
    monkeypatch, timetable
):
    monkeypatch.setattr("shopflow.timetables._now", lambda: _utc(2026, 12, 6, 0, 20))
    as_scheduler = TimeRestriction(earliest=SINCE_2000, latest=None, catchup=False)
    assert (
        timetable.next_dagrun_info(last_automated_data_interval=None, restriction=as_scheduler)
        is None
    )
    # Airflow's backfill walks the timetable with catch-up between its dates
    as_backfill = TimeRestriction(earliest=_utc(2025, 5, 28), latest=_utc(2025, 6, 2), catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=as_backfill)
    assert info is not None and info.run_after <= _utc(2025, 6, 2)
    assert timetable.periodic  # Airflow refuses backfills of non-periodic timetables
    assert timetable.summary.startswith("off")
    again = type(timetable).deserialize(timetable.serialize())
    assert again.scheduled is False and again.serialize() == timetable.serialize()


def test_a_schedule_value_that_is_not_a_switch_is_an_error(tmp_path):
    from shopflow.config import ConfigError
    from shopflow.settings import load_settings

    with pytest.raises(ConfigError, match=r"airflow.schedule .*true or false"):
        load_settings({"SHOPFLOW_HOME": str(tmp_path), "SHOPFLOW_SCHEDULE": "nightly"})
