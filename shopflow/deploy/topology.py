"""The deployment's one source of truth: which services run, with which command, and the Airflow
settings they share. ``shopflow up`` (native processes) and ``docker-compose.yml`` both come
from here: compose reads the rendered :data:`COMPOSE_ENV_FILE` (``env_file:``) and runs the
commands of :func:`airflow_command`; ``tests/test_docker_compose.py`` fails when the two differ.

Settings come in two kinds:

- :func:`shared_settings`: the same value in every deployment of an executor (the executor,
  the queues, DAG behaviour, the auth manager, ...). Compose reads them from the env file;
  the native services get them from :func:`shopflow.deploy.env.airflow_env`.
- :data:`ENDPOINT_SETTINGS`: where things are (database and broker URLs, the API server's
  address, folders, log-server ports) and secrets: each deployment sets them its own way
  (``shopflow up`` from ``Settings``, compose in its ``environment:`` from ``.env``).

Queues (``docs/deployment.md``, "One writer per DuckDB file"): every task that reads or
writes ``$SHOPFLOW_HOME`` (landing files, the warehouse and published DuckDB files, the model
registry) is sent to the home queue (``SHOPFLOW_HOME_QUEUE``, default ``shopflow_home``), which
only workers on the machine holding ``SHOPFLOW_HOME`` serve; the one-slot warehouse pool,
kept in the metadata database, lets one of them run at a time across all workers. Tasks
that only read XCom or fail the run (``dbt_model``, ``any_task_failed``) go to
:data:`DEFAULT_QUEUE` and may run on any worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOCAL = "local"
CELERY = "celery"
EXECUTORS = (LOCAL, CELERY)
EXECUTOR_CLASSES = {LOCAL: "LocalExecutor", CELERY: "CeleryExecutor"}

# the queue of tasks that may run on any worker (Airflow's own default queue name)
DEFAULT_QUEUE = "default"
HOME_QUEUE = "shopflow_home"
# task processes per Celery worker: the warehouse pool runs one writer at a time, the rest
# only wait, so two per worker keep a small machine responsive
WORKER_CONCURRENCY = 2
# LocalExecutor worker processes: same reasoning
PARALLELISM = 4

# rendered from shared_settings(CELERY) by `python -m shopflow.deploy.topology`; compose reads it
COMPOSE_ENV_FILE = Path(__file__).with_name("airflow-celery.env")


@dataclass(frozen=True)
class Service:
    """One long-running process of a deployment.

    ``name`` is the native name (``shopflow status``, pid and log files); ``compose`` the
    docker-compose service running the same command (None: not an Airflow process)."""

    name: str
    compose: str | None
    worker: int | None = None  # 1, 2, ...: a Celery worker


AIRFLOW_SERVICES = (
    Service("api-server", "airflow-apiserver"),
    Service("scheduler", "airflow-scheduler"),
    Service("dag-processor", "airflow-dag-processor"),
    Service("triggerer", "airflow-triggerer"),
)
# Celery's infrastructure: started before, stopped after the Airflow services
POSTGRES = Service("postgres", "postgres")
REDIS = Service("redis", "redis")
# Celery's monitoring UI (workers, queues, tasks): started last, stopped first
FLOWER = Service("flower", "flower")
NATIVE_WORKERS = 2


def worker(number: int) -> Service:
    """The ``number``-th Celery worker (compose runs one service, scaled with ``--scale``)."""
    return Service(f"worker-{number}", "airflow-worker", worker=number)


def services(executor: str) -> tuple[Service, ...]:
    """The native services of ``executor``, in start order."""
    if executor == LOCAL:
        return AIRFLOW_SERVICES
    if executor == CELERY:
        workers = tuple(worker(n) for n in range(1, NATIVE_WORKERS + 1))
        return (POSTGRES, REDIS, *AIRFLOW_SERVICES, *workers, FLOWER)
    raise ValueError(f"unknown executor {executor!r}: one of {', '.join(EXECUTORS)}")


def airflow_command(service: Service, home_queue: str = HOME_QUEUE) -> list[str]:
    """The ``airflow`` CLI arguments of an Airflow service, without deployment-specific
    options (the native API server adds its port and host). A worker on the machine holding
    SHOPFLOW_HOME serves both queues; one elsewhere would serve :data:`DEFAULT_QUEUE` only."""
    if service == FLOWER:
        return ["celery", "flower"]
    if service.worker is None:
        return [service.name]
    return ["celery", "worker", "--queues", f"{DEFAULT_QUEUE},{home_queue}"]


# settings every deployment sets for itself (see the module docstring)
ENDPOINT_SETTINGS = frozenset(
    {
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API__BASE_URL",
        "AIRFLOW__API__HOST",
        "AIRFLOW__API__PORT",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    }
)
# endpoint settings of the Celery executor only
CELERY_ENDPOINT_SETTINGS = frozenset(
    {"AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"}
)


def endpoint_settings(executor: str) -> frozenset[str]:
    """The endpoint settings a deployment of ``executor`` must set."""
    if executor == CELERY:
        return ENDPOINT_SETTINGS
    return ENDPOINT_SETTINGS - CELERY_ENDPOINT_SETTINGS


def shared_settings(executor: str) -> dict[str, str]:
    """The AIRFLOW__* settings with the same value in every deployment of ``executor``."""
    settings = {
        "AIRFLOW__CORE__EXECUTOR": EXECUTOR_CLASSES[executor],
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # new DAGs stay paused until `shopflow up` (or airflow-init) unpauses them on purpose
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
    }
    if executor == LOCAL:
        settings["AIRFLOW__CORE__PARALLELISM"] = str(PARALLELISM)
        # its own HTTP port (8974) would clash between two installations on one machine
        settings["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] = "False"
    else:
        settings["AIRFLOW__CORE__PARALLELISM"] = str(WORKER_CONCURRENCY * NATIVE_WORKERS)
        settings["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(WORKER_CONCURRENCY)
        # a task whose worker died is re-queued (and retried) rather than left running
        settings["AIRFLOW__CELERY__TASK_ACKS_LATE"] = "True"
        settings["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] = "False"
    return settings


def render_env_file(executor: str = CELERY) -> str:
    """The env file compose reads: :func:`shared_settings`, one ``KEY=value`` per line."""
    lines = [
        "# Generated by `python -m shopflow.deploy.topology` from shopflow/deploy/topology.py:",
        "# do not edit. Airflow settings shared by every service of docker-compose.yml and",
        "# by `shopflow up --executor celery`; tests/test_docker_compose.py checks both.",
    ]
    lines += [f"{key}={value}" for key, value in sorted(shared_settings(executor).items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - the maintainer's rendering command
    COMPOSE_ENV_FILE.write_text(render_env_file())
    print(f"wrote {COMPOSE_ENV_FILE}")
