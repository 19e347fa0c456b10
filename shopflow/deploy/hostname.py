"""The host name Airflow records for a task instance (``[core] hostname_callable``).

``shopflow up --executor celery`` runs two Celery workers on one machine; each gets
``SHOPFLOW_WORKER_NAME`` in its environment, so its task instances record
``<worker name>@<fqdn>`` and the UI (and the tests) can tell which worker ran a task. Without
the variable (one worker per machine, as in docker-compose) it is the plain FQDN, Airflow's
default. On one machine the API server reads task logs from the shared log folder, so the
name need not resolve.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """``<SHOPFLOW_WORKER_NAME>@<fqdn>``, or the FQDN when the variable is not set."""
    fqdn = socket.getfqdn()
    name = os.environ.get("SHOPFLOW_WORKER_NAME")
    return f"{name}@{fqdn}" if name else fqdn
