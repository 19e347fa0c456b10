"""The DAG tests share one Airflow probe of the DAG folder (see airflow_probe)."""

from __future__ import annotations

import pytest

from tests.dags.airflow_probe import airflow_probe


@pytest.fixture(scope="session")
def probe() -> dict:
    """What Airflow parsed from dags/: import errors, DAGs, tasks and their edges."""
    return airflow_probe()
