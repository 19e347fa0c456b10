"""The nightly's first task: wait, deferred on the triggerer, until date D's data is there.

Date D's ``order_lines`` landing partition is complete when its completion marker exists
(``shopflow.landing.COMPLETE_MARKER``, written last by ``write_partition``). While the
marker is missing the sensor defers to the triggerer (a file trigger polls for it): no
worker process and no pool slot is held while a night waits for its data.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import BaseSensorOperator

# how long a scheduled night waits for its data before it fails (and alerts)
LANDING_WAIT = dt.timedelta(hours=12)
POLL_SECONDS = 30.0


class LandingPartitionSensor(BaseSensorOperator):
    """Succeeds when the ``order_lines`` partition of the run's date is complete."""

    def __init__(self, *, entity: str = "order_lines", **kwargs) -> None:
        kwargs.setdefault("timeout", LANDING_WAIT.total_seconds())
        super().__init__(**kwargs)
        self.entity = entity

    def _marker(self, context):
        from shopflow.landing import marker_path
        from shopflow.settings import load_settings

        day = dt.date.fromisoformat(context["ds"])
        return marker_path(load_settings().landing_dir, self.entity, day)

    def poke(self, context) -> bool:
        return self._marker(context).is_file()

    def execute(self, context) -> None:
        marker = self._marker(context)
        if marker.is_file():
            self.log.info("%s partition complete: %s", self.entity, marker)
            return
        from airflow.providers.standard.triggers.file import FileTrigger

        self.log.info("waiting for %s (deferred to the triggerer)", marker)
        self.defer(
            trigger=FileTrigger(filepath=str(marker), poke_interval=POLL_SECONDS),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context, event=None) -> None:
        self.log.info("%s partition complete: %s", self.entity, self._marker(context))
