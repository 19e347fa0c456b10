"""Configuration of the embedded Airflow: one environment shared by every service and CLI call.

Everything lives under ``$SHOPFLOW_HOME/airflow`` (AIRFLOW_HOME): the SQLite metadata database,
task logs, and ``services/`` (pid files, one log per service, the admin password file, the
JWT secret and the Celery deployment's Postgres and Redis passwords, all mode 0600). The
settings shared with docker-compose.yml come from :mod:`shopflow.deploy.topology`.
The API server's port is the ``SHOPFLOW_AIRFLOW_PORT`` setting;
the execution API URL that task processes call follows it, so another port needs no
hand-set Airflow variable.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

from shopflow.deploy.topology import CELERY, EXECUTORS, LOCAL, shared_settings

ADMIN_USER = "admin"


def _secret_file(path: Path, make) -> str:
    """Read a secret from ``path``, creating it once with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text()


def passwords_file(settings: Settings) -> Path:
    """The simple auth manager's passwords file (JSON ``{"admin": "..."}``, mode 0600)."""
    return settings.airflow_services_dir / "passwords.json"


def admin_password(settings: Settings) -> str:
    """The ``admin`` user's password: ``SHOPFLOW_AIRFLOW_ADMIN_PASSWORD`` when set, otherwise
    generated once and kept in :func:`passwords_file`."""
    path = passwords_file(settings)
    wanted = settings.airflow_admin_password
    if wanted is not None:
        current = json.loads(path.read_text()).get(ADMIN_USER) if path.exists() else None
        if current != wanted:
            path.unlink(missing_ok=True)
        _secret_file(path, lambda: json.dumps({ADMIN_USER: wanted}) + "\n")
        return wanted
    text = _secret_file(path, lambda: json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}) + "\n")
    return json.loads(text)[ADMIN_USER]


def executor_file(settings: Settings) -> Path:
    """Remembers the executor `shopflow up` last started (its metadata database is there)."""
    return settings.airflow_services_dir / "executor"


def deployed_executor(settings: Settings) -> str:
    """The executor of this installation: the setting when given, else the one `shopflow up`
    last started, else ``local``."""
    if settings.airflow_executor:
        return settings.airflow_executor
    try:
        recorded = executor_file(settings).read_text().strip()
    except FileNotFoundError:
        return LOCAL
    return recorded if recorded in EXECUTORS else LOCAL


def record_executor(settings: Settings, executor: str) -> None:
    """Remember ``executor`` as the one this installation runs."""
    settings.airflow_services_dir.mkdir(parents=True, exist_ok=True)
    executor_file(settings).write_text(executor + "\n")


def postgres_password(settings: Settings) -> str:
    """The Celery deployment's Postgres password of user ``airflow`` (generated once, 0600)."""
    return _secret_file(
        settings.airflow_services_dir / "postgres_password", lambda: secrets.token_hex(16)
    )


def redis_password(settings: Settings) -> str:
    """The Celery deployment's Redis password (generated once, 0600)."""
    return _secret_file(
        settings.airflow_services_dir / "redis_password", lambda: secrets.token_hex(16)
    )


def database_url(settings: Settings, executor: str) -> str:
    """The metadata database: SQLite under AIRFLOW_HOME, or the Celery deployment's Postgres."""
    if executor == CELERY:
        return (
            f"postgresql+psycopg2://airflow:{postgres_password(settings)}"
            f"@127.0.0.1:{settings.postgres_port}/airflow"
        )
    return f"sqlite:///{settings.airflow_home / 'airflow.db'}"


def endpoint_env(settings: Settings, executor: str) -> dict[str, str]:
    """The endpoint settings of this machine's deployment (topology.ENDPOINT_SETTINGS)."""
    home = settings.airflow_home
    worker_logs, triggerer_logs = settings.airflow_log_server_ports
    jwt_secret = _secret_file(
        settings.airflow_services_dir / "jwt_secret", lambda: secrets.token_urlsafe(32)
    )
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(settings, executor),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": settings.airflow_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_root(settings)}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(triggerer_logs),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(settings)),
    }
    if executor == CELERY:
        env["AIRFLOW__CELERY__BROKER_URL"] = (
            f"redis://:{redis_password(settings)}@127.0.0.1:{settings.redis_port}/0"
        )
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + database_url(settings, executor)
    return env


def airflow_env(settings: Settings, executor: str | None = None) -> dict[str, str]:
    """Environment of every Airflow process of this installation: the topology's shared
    settings of its executor plus this machine's endpoints."""
    executor = executor or deployed_executor(settings)
    admin_password(settings)  # the passwords file exists before the API server reads it
    return {
        **os.environ,
        "SHOPFLOW_HOME": str(settings.home),
        "SHOPFLOW_AIRFLOW_PORT": str(settings.airflow_port),
        "SHOPFLOW_AIRFLOW_EXECUTOR": executor,
        "SHOPFLOW_HOME_QUEUE": settings.home_queue,
        "AIRFLOW_HOME": str(settings.airflow_home),
        **shared_settings(executor),
        **endpoint_env(settings, executor),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(settings.project_root), os.environ.get("PYTHONPATH", "")) if p
        ),
        "GX_ANALYTICS_ENABLED": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def api_root(settings: Settings) -> str:
    """The API server as this machine's processes reach it (it listens on 127.0.0.1 only)."""
    return f"http://127.0.0.1:{settings.airflow_port}"


def airflow_executable() -> str:
    """The ``airflow`` script next to this interpreter (the project's virtualenv)."""
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow(
    settings: Settings, *args: str, capture: bool = False, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run an ``airflow`` CLI command against the embedded installation."""
    return subprocess.run(
        [airflow_executable(), *args],
        env=airflow_env(settings),
        capture_output=capture,
        text=True,
        check=False,
        timeout=timeout,
    )


def migrate_database(settings: Settings) -> None:
    """Create or upgrade the metadata database (once per Airflow version: a stamp file
    remembers it, since the CLI call costs seconds)."""
    from importlib.metadata import version

    settings.airflow_services_dir.mkdir(parents=True, exist_ok=True)
    executor = deployed_executor(settings)
    stamp = settings.airflow_services_dir / f".migrated-{version('apache-airflow-core')}-{executor}"
    database = settings.postgres_dir if executor == CELERY else settings.airflow_home / "airflow.db"
    if stamp.exists() and database.exists():
        return
    done = airflow(settings, "db", "migrate", capture=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(
            f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    stamp.touch()
