"""``shopflow up`` / ``down`` / ``status``: the embedded Airflow as supervised background services.

With the LocalExecutor (the default), four processes, as ``airflow standalone`` runs them but
each on its own: ``api-server`` (UI, REST API and the execution API task processes report
to), ``scheduler`` (it runs the tasks as its children), ``dag-processor`` and ``triggerer``
(deferred sensors). With ``--executor celery`` (:mod:`shopflow.deploy.topology`), also
``postgres`` (metadata database, run as the ``postgres`` user, data under
``$SHOPFLOW_HOME/postgres``), ``redis`` (the broker) and two Celery workers, ``worker-1``
and ``worker-2``, which run the tasks instead of the scheduler. Ports: the API server's
(``SHOPFLOW_AIRFLOW_PORT``), then the task and triggerer log servers, Postgres and Redis.
Each starts in its own session, so its process group holds every child it forks; its pid
file (``services/<name>.pid``: pid and start time, so a recycled pid is never mistaken for
it) and its log (``services/<name>.log``) live under ``$SHOPFLOW_HOME/airflow/services``.
``up`` is idempotent, replaces stale pid files and restarts dead services; ``down`` stops
the process groups and any descendant that left them, and waits until none is left.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.deploy import infra
from shopflow.deploy.api import AirflowApi, AirflowUnavailableError, ApiError
from shopflow.deploy.env import (
    ADMIN_USER,
    admin_password,
    airflow_env,
    airflow_executable,
    deployed_executor,
    executor_file,
    migrate_database,
    passwords_file,
    record_executor,
)
from shopflow.deploy.infra import ServiceError
from shopflow.deploy.topology import CELERY, EXECUTORS, LOCAL, Service, airflow_command, services
from shopflow.warehouse import WAREHOUSE_POOL

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

# the LocalExecutor's services (topology.services(executor) has each executor's)
SERVICES = tuple(s.name for s in services(LOCAL))
# ports a deployment uses from SHOPFLOW_AIRFLOW_PORT on (free_port_block sizes)
PORT_BLOCK = {LOCAL: 3, CELERY: 6}
SHOPFLOW_DAGS = ("shopflow_nightly", "shopflow_retrain")
# /api/v2/monitor/health names the components this way
HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
START_TIMEOUT_SECONDS = 240.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ServiceState:
    """One service as ``shopflow status`` shows it."""

    name: str
    pid: int | None
    alive: bool
    log: Path


def _command(settings: Settings, service: Service) -> list[str]:
    if service.name == "postgres":
        return infra.postgres_command(settings)
    if service.name == "redis":
        return infra.redis_command(settings)
    command = [airflow_executable(), *airflow_command(service, settings.home_queue)]
    if service.name == "api-server":
        command += ["--port", str(settings.airflow_port), "--host", "127.0.0.1", "--workers", "1"]
    if service.name == "flower":
        command += ["--hostname", "127.0.0.1", "--port", str(settings.flower_port)]
    if service.worker is not None:
        command += ["--celery-hostname", f"{service.name}@%h"]
        if service.worker > 1:
            # one log server per machine (worker-1's): the API server reads the others' logs
            # from the shared log folder
            command.append("--skip-serve-logs")
    return command


def _service_env(service: Service, env: dict[str, str], settings: Settings) -> dict[str, str]:
    if service.name == "flower":
        # Flower's own option (not on its command line, which any user of the machine sees):
        # the Airflow admin's login
        return {**env, "FLOWER_BASIC_AUTH": f"{ADMIN_USER}:{admin_password(settings)}"}
    if service.worker is None:
        return env
    return {
        **env,
        "SHOPFLOW_WORKER_NAME": service.name,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "shopflow.deploy.hostname.worker_hostname",
    }


def pid_file(settings: Settings, name: str) -> Path:
    return settings.airflow_services_dir / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return settings.airflow_services_dir / f"{name}.log"


def _read_pid(settings: Settings, name: str) -> tuple[int, float] | None:
    try:
        record = json.loads(pid_file(settings, name).read_text())
        return int(record["pid"]), float(record["started"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _process(pid: int, started: float):
    """The psutil process with this pid and start time, or None (gone, zombie or recycled)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started) > 1.0:
            return None  # the pid now belongs to another program: the pid file is stale
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.Error:
        return None


def status(settings: Settings) -> list[ServiceState]:
    """Each service of the installation's executor: its pid (from the pid file) and whether
    that process is running."""
    states = []
    for name in (s.name for s in services(deployed_executor(settings))):
        record = _read_pid(settings, name)
        alive = bool(record and _process(*record))
        states.append(
            ServiceState(name, record[0] if record else None, alive, log_file(settings, name))
        )
    return states


def is_up(settings: Settings) -> bool:
    """True when every service's process is running."""
    return all(state.alive for state in status(settings))


@contextlib.contextmanager
def _lock(settings: Settings, timeout: float = START_TIMEOUT_SECONDS * 2) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per installation (two ``shopflow run`` may start
    together)."""
    settings.airflow_services_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.airflow_services_dir / ".lock", "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        "another `shopflow up` or `down` holds the services lock "
                        f"({settings.airflow_services_dir / '.lock'})"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_port_block(size: int = 3) -> int:
    """A free loopback port whose next ``size - 1`` ports are free too (the API server's port
    is followed by the two log servers' ports)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65536 - size and not any(port_in_use(p) for p in range(port, port + size)):
            return port
    raise ServiceError(f"no block of {size} free ports found on 127.0.0.1")


def port_in_use(port: int) -> bool:
    """True when something listens on ``port`` on this machine or the port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the servers bind: connections of a stopped server still in TIME_WAIT do not count
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _check_ports(settings: Settings, starting: list[str]) -> None:
    wanted = []
    if "api-server" in starting:
        wanted.append((settings.airflow_port, "the API server / UI"))
    worker_logs, triggerer_logs = settings.airflow_log_server_ports
    if "scheduler" in starting and deployed_executor(settings) == LOCAL:
        wanted.append((worker_logs, "the task log server"))
    if "worker-1" in starting:
        wanted.append((worker_logs, "the task log server of worker-1"))
    if "triggerer" in starting:
        wanted.append((triggerer_logs, "the triggerer log server"))
    if "postgres" in starting:
        wanted.append((settings.postgres_port, "Postgres, the metadata database"))
    if "redis" in starting:
        wanted.append((settings.redis_port, "Redis, the Celery broker"))
    if "flower" in starting:
        wanted.append((settings.flower_port, "Flower, Celery's monitoring UI"))
    block = PORT_BLOCK[deployed_executor(settings)]
    for port, use in wanted:
        if port_in_use(port):
            raise ServiceError(
                f"port {port} ({use}) is already in use by {infra.port_holder(port)}. Stop it, "
                f"or choose another port: SHOPFLOW_AIRFLOW_PORT=<free port> (it uses that port "
                f"and the next {block - 1}; now {settings.airflow_port}). Nothing was started."
            )


def _start(settings: Settings, service: Service, env: dict[str, str]) -> None:
    import psutil

    name = service.name
    log = log_file(settings, name)
    with log.open("ab") as handle:
        handle.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        handle.flush()
        process = subprocess.Popen(
            _command(settings, service),
            env=_service_env(service, env, settings),
            cwd=settings.project_root,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` stops it with its children
        )
    record = {
        "pid": process.pid,
        "started": psutil.Process(process.pid).create_time(),
        "port": settings.airflow_port,
    }
    pid_file(settings, name).write_text(json.dumps(record))


def _check_same_port(settings: Settings) -> None:
    """Services already running on another port than the setting's: say so at once."""
    try:
        record = json.loads(pid_file(settings, "api-server").read_text())
    except (FileNotFoundError, ValueError):
        return
    port = record.get("port", settings.airflow_port)
    if port != settings.airflow_port:
        raise ServiceError(
            f"Airflow of {settings.home} is already up on port {port}, not "
            f"{settings.airflow_port} (SHOPFLOW_AIRFLOW_PORT): use that port, or "
            "`shopflow down` first"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _wait_healthy(settings: Settings, api: AirflowApi, deadline: float) -> None:
    """Until the API server answers and reports every component healthy."""
    last = "the API server does not answer yet"
    while time.monotonic() < deadline:
        for state in status(settings):
            if not state.alive:
                raise ServiceError(
                    f"{state.name} stopped while starting; the end of {state.log}:\n"
                    f"{_tail(state.log)}"
                )
        if deployed_executor(settings) == CELERY:
            waiting = infra.workers_not_ready(settings, [s.name for s in status(settings)])
            if waiting:
                last = f"Celery workers not ready yet: {', '.join(waiting)}"
                time.sleep(1.0)
                continue
        try:
            health = api.health()
            unhealthy = [
                key
                for key in ("metadatabase", *HEALTH_KEYS.values())
                if (health.get(key) or {}).get("status") != "healthy"
            ]
            if not unhealthy:
                return
            last = f"not healthy yet: {', '.join(unhealthy)}"
        except (AirflowUnavailableError, ApiError) as exc:
            last = str(exc)
        time.sleep(1.0)
    raise ServiceError(
        f"Airflow did not become healthy in time ({last}); see {settings.airflow_services_dir}"
    )


def _wait_for_dags(settings: Settings, api: AirflowApi, deadline: float) -> None:
    """Until the dag-processor has registered Shopflow's DAGs (an import error is reported)."""
    while time.monotonic() < deadline:
        found = {d["dag_id"] for d in api.get("/dags", dag_id_pattern="shopflow_%")["dags"]}
        if set(SHOPFLOW_DAGS) <= found:
            return
        errors = api.get("/importErrors").get("import_errors", [])
        if errors:
            text = "\n".join(f"{e['filename']}:\n{e['stack_trace'][-1500:]}" for e in errors)
            raise ServiceError(f"a DAG file does not import:\n{text}")
        time.sleep(1.0)
    raise ServiceError(
        f"the dag-processor has not registered {', '.join(SHOPFLOW_DAGS)} in time; see "
        f"{log_file(settings, 'dag-processor')}"
    )


def _prepare(settings: Settings, api: AirflowApi) -> None:
    """The warehouse pool (one slot) and unpaused Shopflow DAGs (idempotent)."""
    try:
        pool = api.get(f"/pools/{WAREHOUSE_POOL}")
        if pool["slots"] != 1:
            api.patch(f"/pools/{WAREHOUSE_POOL}", {"name": WAREHOUSE_POOL, "slots": 1})
    except ApiError as exc:
        if exc.status != 404:
            raise
        api.post(
            "/pools",
            {
                "name": WAREHOUSE_POOL,
                "slots": 1,
                "description": "Shopflow: one writer per DuckDB file",
            },
        )
    for dag_id in SHOPFLOW_DAGS:
        # no surprise run: the nightly's timetable schedules the business day still under
        # way, not the one that ended before it was switched on (shopflow.timetables). Only
        # a paused DAG is written to: `shopflow run` calls this each time, and a write
        # competes with the other runs' for the embedded deployment's SQLite database.
        if api.get(f"/dags/{dag_id}")["is_paused"]:
            api.patch(f"/dags/{dag_id}", {"is_paused": False})


def _resolve_executor(settings: Settings) -> str:
    """The executor to run: the one requested, unless another one is up (then an error)."""
    requested = settings.airflow_executor
    try:
        recorded = executor_file(settings).read_text().strip()
    except FileNotFoundError:
        recorded = None
    if requested and recorded in EXECUTORS and recorded != requested:
        alive = [s for s in status(replace(settings, airflow_executor=recorded)) if s.alive]
        if alive:
            raise ServiceError(
                f"Airflow of {settings.home} is up with the {recorded} executor "
                f"({', '.join(s.name for s in alive)}), not {requested}: `shopflow down` first"
            )
    return requested or (recorded if recorded in EXECUTORS else LOCAL)


def up(settings: Settings, say: Callable[[str], None] = print) -> str:
    """Start whatever service is not running, wait until Airflow is healthy and the DAGs are
    registered and unpaused; returns the UI's URL. Idempotent. The executor is
    ``settings.airflow_executor`` (``shopflow up --executor``), else the one last started."""
    settings.ensure_dirs()
    settings.airflow_services_dir.mkdir(parents=True, exist_ok=True)
    api = AirflowApi(settings)
    with _lock(settings):
        executor = _resolve_executor(settings)
        settings = replace(settings, airflow_executor=executor)
        wanted = services(executor)
        if executor == CELERY:
            infra.check_binaries()
        states = status(settings)
        starting = [s.name for s in states if not s.alive]
        if any(s.alive for s in states if s.name == "api-server"):
            _check_same_port(settings)
        if starting:
            _check_ports(settings, starting)
            # remembered once the checks passed: `shopflow run` and `airflow` calls use it
            record_executor(settings, executor)
            env = airflow_env(settings, executor)
            # the metadata database and the broker first: Airflow's services need them
            for service in wanted:
                if service.name in starting and service.name in ("postgres", "redis"):
                    pid_file(settings, service.name).unlink(missing_ok=True)
                    infra.prepare(settings, service.name)
                    _start(settings, service, env)
                    infra.wait_ready(settings, service.name, log_file(settings, service.name))
            airflow_starting = [n for n in starting if n not in ("postgres", "redis")]
            if set(airflow_starting) >= {"api-server", "scheduler"}:
                say("preparing the Airflow metadata database ...")
                migrate_database(settings)
            for service in wanted:
                if service.name in airflow_starting:
                    pid_file(settings, service.name).unlink(missing_ok=True)
                    _start(settings, service, env)
            say(f"started {', '.join(starting)} ({executor} executor); waiting until healthy ...")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        _wait_healthy(settings, api, deadline)
        _wait_for_dags(settings, api, deadline)
        _prepare(settings, api)
    return settings.airflow_url


def login_help(settings: Settings) -> str:
    """How to open the UI and log in."""
    source = (
        "SHOPFLOW_AIRFLOW_ADMIN_PASSWORD"
        if settings.airflow_admin_password
        else f"generated once, kept in {passwords_file(settings)}"
    )
    text = (
        f"Airflow UI: {settings.airflow_url}\n"
        f"Log in as {ADMIN_USER} / {admin_password(settings)}  ({source})"
    )
    if deployed_executor(settings) == CELERY:
        text += f"\nFlower (Celery workers and queues): {settings.flower_url}, same login"
    return text


def _descendants(process) -> list:
    import psutil

    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


# stop order: nothing starts a task while the rest go away (workers and scheduler first);
# the metadata database and the broker last, once no Airflow process uses them
STOP_ORDER = (
    ("flower", "worker-1", "worker-2", "scheduler", "triggerer", "dag-processor", "api-server"),
    ("redis", "postgres"),
)


def _stop(settings: Settings, names: tuple[str, ...]) -> list[str]:
    import psutil

    stopped, doomed = [], []
    for name in names:
        record = _read_pid(settings, name)
        process = _process(*record) if record else None
        if process is not None:
            family = [process, *_descendants(process)]
            # Postgres: SIGINT is its fast shutdown (SIGTERM waits for clients to leave)
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            for member in family:
                with contextlib.suppress(psutil.Error):
                    member.send_signal(sig)
            doomed += family
            stopped.append(name)
        pid_file(settings, name).unlink(missing_ok=True)
    _, alive = psutil.wait_procs(doomed, timeout=STOP_TIMEOUT_SECONDS)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=10)
    return stopped


def down(settings: Settings, say: Callable[[str], None] = print) -> list[str]:
    """Stop every service (of either executor) with its process group and descendants;
    returns the names stopped. Waits until none of those processes is left (SIGKILL after
    STOP_TIMEOUT_SECONDS); Airflow's services first, then Redis and Postgres."""
    stopped = []
    with _lock(settings):
        for names in STOP_ORDER:
            stopped += _stop(settings, names)
    if stopped:
        say(f"stopped {', '.join(stopped)}")
    return stopped
