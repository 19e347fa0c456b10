"""Postgres and Redis of ``shopflow up --executor celery``, from Debian's packages.

``scripts/install_services.sh`` installs them (apt, idempotent). Each runs in the foreground
under :mod:`shopflow.deploy.services`' supervision, on a port of the deployment's block,
listening on 127.0.0.1 only, with a generated password (``$SHOPFLOW_HOME/airflow/services``,
mode 0600) and its data under ``$SHOPFLOW_HOME``:

- Postgres refuses to run as root, so as root it runs as the Debian ``postgres`` user
  (``runuser``), its data directory ``$SHOPFLOW_HOME/postgres`` owned by that user; no Unix
  socket, TCP with a password (scram-sha-256) only.
- Redis keeps nothing on disk (``save ""``, no AOF): the broker only carries queued task
  messages, which the scheduler re-sends when they are lost.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.deploy.env import postgres_password, redis_password

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

INSTALL_HINT = "run scripts/install_services.sh (installs Debian's postgresql and redis-server)"
READY_TIMEOUT_SECONDS = 60.0
POSTGRES_USER = "postgres"  # the Debian system user that runs the server when we are root


class ServiceError(RuntimeError):
    """A service could not be started, or is not running when it must be."""


def postgres_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL server's bin folder, else the one on PATH, else None."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for folder in reversed(found):
        if (folder / "initdb").exists():
            return folder
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    return None


def check_binaries() -> None:
    """Raise ServiceError naming what is missing (and how to install it)."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("the PostgreSQL server (postgres, initdb)")
    if shutil.which("redis-server") is None:
        missing.append("the Redis server (redis-server)")
    if missing:
        raise ServiceError(
            f"the Celery executor needs {' and '.join(missing)}, not found on this machine: "
            f"{INSTALL_HINT}. Nothing was started."
        )


def _as_postgres() -> list[str]:
    """The command prefix that runs a program as the postgres user when we are root."""
    return ["runuser", "-u", POSTGRES_USER, "--"] if os.geteuid() == 0 else []


def postgres_command(settings: Settings) -> list[str]:
    """The Postgres server in the foreground on 127.0.0.1:postgres_port, no Unix socket."""
    return [
        *_as_postgres(),
        str(postgres_bin_dir() / "postgres"),
        "-D",
        str(settings.postgres_dir),
        "-p",
        str(settings.postgres_port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
    ]


def redis_conf(settings: Settings) -> Path:
    return settings.redis_dir / "redis.conf"


def redis_command(settings: Settings) -> list[str]:
    """Redis in the foreground with its generated config (the password is not on the
    command line, where ``ps`` would show it)."""
    return [shutil.which("redis-server") or "redis-server", str(redis_conf(settings))]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise ServiceError(f"{what} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")


def _prepare_postgres(settings: Settings) -> None:
    """Create the cluster once: user ``airflow`` (superuser of this private cluster) with
    the generated password; the data directory owned by the postgres user."""
    data = settings.postgres_dir
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    password_file = settings.home / ".postgres-initdb-password"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(postgres_password(settings) + "\n")
    try:
        if os.geteuid() == 0:
            shutil.chown(data, POSTGRES_USER, POSTGRES_USER)
            shutil.chown(password_file, POSTGRES_USER, POSTGRES_USER)
            reachable = subprocess.run(
                [*_as_postgres(), "test", "-w", str(data)], check=False
            ).returncode
            if reachable != 0:
                raise ServiceError(
                    f"the {POSTGRES_USER} user cannot reach {data}: let it traverse the parent "
                    f"folders of SHOPFLOW_HOME (chmod o+x), or choose another SHOPFLOW_HOME"
                )
        _run(
            [
                *_as_postgres(),
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(data),
                "-U",
                "airflow",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            ],
            "initdb",
        )
    finally:
        password_file.unlink(missing_ok=True)


def _prepare_redis(settings: Settings) -> None:
    settings.redis_dir.mkdir(parents=True, exist_ok=True)
    path = redis_conf(settings)
    text = "\n".join(
        [
            f"port {settings.redis_port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            "daemonize no",
            f"dir {settings.redis_dir}",
            'save ""',
            "appendonly no",
            f"requirepass {redis_password(settings)}",
            "",
        ]
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def prepare(settings: Settings, name: str) -> None:
    """What ``name`` (postgres or redis) needs on disk before it starts (idempotent)."""
    {"postgres": _prepare_postgres, "redis": _prepare_redis}[name](settings)


def _postgres_ready(settings: Settings) -> bool:
    import psycopg2

    try:
        con = psycopg2.connect(
            host="127.0.0.1",
            port=settings.postgres_port,
            user="airflow",
            password=postgres_password(settings),
            dbname="postgres",
            connect_timeout=2,
        )
    except psycopg2.OperationalError:
        return False
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = 'airflow'")
            if cur.fetchone() is None:
                cur.execute("create database airflow")
    finally:
        con.close()
    return True


def _redis_ready(settings: Settings) -> bool:
    import redis

    try:
        client = redis.Redis(
            host="127.0.0.1",
            port=settings.redis_port,
            password=redis_password(settings),
            socket_timeout=2,
        )
        return bool(client.ping())
    except redis.RedisError:
        return False


def wait_ready(settings: Settings, name: str, log: Path) -> None:
    """Until ``name`` accepts connections (Postgres: and has the ``airflow`` database)."""
    ready = {"postgres": _postgres_ready, "redis": _redis_ready}[name]
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if ready(settings):
            return
        time.sleep(0.3)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
    raise ServiceError(f"{name} did not accept connections in time; the end of {log}:\n{tail}")


def workers_not_ready(settings: Settings, names: list[str]) -> list[str]:
    """The Celery workers among ``names`` whose log does not yet say, since their last
    start, that they are ready."""
    waiting = []
    for name in names:
        if not name.startswith("worker-"):
            continue
        path = settings.airflow_services_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        since_start = text.rsplit(f"starting {name}\n", 1)[-1]
        if " ready." not in since_start:
            waiting.append(name)
    return waiting


def port_holder(port: int) -> str:
    """Who listens on ``port`` of this machine: ``pid N (command line)``, as far as we can see."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    return "another program (not visible to this user)"
                try:
                    cmdline = " ".join(psutil.Process(conn.pid).cmdline())[:120]
                except psutil.Error:
                    cmdline = "?"
                return f"pid {conn.pid} ({cmdline})"
    except psutil.Error:
        pass
    return "another program"
