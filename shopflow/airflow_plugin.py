"""The ``shopflow`` Airflow plugin (entry point ``airflow.plugins`` in pyproject.toml).

Airflow serializes a DAG's timetable only when its class is registered by a plugin; every
component (dag-processor, scheduler, API server) loads this one through the entry point, in
the local deployment and in docker-compose alike.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from shopflow.timetables import BusinessDayTimetable, UpcomingCronTriggerTimetable


class ShopflowPlugin(AirflowPlugin):
    """Registers Shopflow's timetables."""

    name = "shopflow"
    timetables = [BusinessDayTimetable, UpcomingCronTriggerTimetable]
