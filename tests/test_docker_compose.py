"""docker-compose.yml and `shopflow up --executor celery` start the same deployment.

No Docker engine runs here, so the compose file is compared with the one source both come
from (shopflow.deploy.topology) and with what the native setup really runs (the commands
and environment services.py builds): the same services, each with the same Airflow command,
the same shared settings (the env file compose reads is the topology's rendering) and the
same set of endpoint settings, each an option the pinned Airflow knows. :func:`differences`
does the comparison; the last tests feed it altered copies and see each change caught.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from shopflow.deploy import services as native
from shopflow.deploy.env import airflow_env
from shopflow.deploy.topology import (
    CELERY,
    COMPOSE_ENV_FILE,
    airflow_command,
    endpoint_settings,
    render_env_file,
    services,
    shared_settings,
)
from shopflow.settings import load_settings
from shopflow.warehouse import WAREHOUSE_POOL
from tests.dags.airflow_probe import airflow_probe

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
INIT = "airflow-init"


def _env_file(service: dict) -> dict[str, str]:
    settings = {}
    for name in service.get("env_file", []):
        for line in (ROOT / name).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings[key] = value
    return settings


def _airflow_env(service: dict) -> dict[str, str]:
    """The AIRFLOW__* settings a compose service gets: env file, then its environment."""
    merged = {**_env_file(service), **service.get("environment", {})}
    return {k: str(v) for k, v in merged.items() if k.startswith("AIRFLOW__")}


def native_deployment(tmp_path: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What `shopflow up --executor celery` runs: service -> command, and the environment."""
    settings = load_settings({"SHOPFLOW_HOME": str(tmp_path), "SHOPFLOW_AIRFLOW_EXECUTOR": CELERY})
    commands = {s.name: native._command(settings, s) for s in services(CELERY) if s.compose}
    env = airflow_env(settings, CELERY)
    return commands, {k: v for k, v in env.items() if k.startswith("AIRFLOW__")}


def differences(
    compose: dict, env_text: str, commands: dict[str, list[str]], native_env: dict[str, str]
) -> list[str]:
    """Every way compose and the native setup differ from the topology (empty: none)."""
    found = []
    wanted = {s.compose: s for s in services(CELERY)}
    present = set(compose["services"]) - {INIT}
    if present != set(wanted):
        found.append(f"compose services {sorted(present)} != topology {sorted(wanted)}")
    if env_text != render_env_file(CELERY):
        found.append(f"{COMPOSE_ENV_FILE.name} is not the topology's rendering")
    shared = shared_settings(CELERY)
    endpoints = endpoint_settings(CELERY)
    for name in sorted(present & set(wanted)):
        service, spec = compose["services"][name], wanted[name]
        if spec.name in ("postgres", "redis"):
            continue
        command = airflow_command(spec)
        if service.get("command") != command:
            found.append(f"{name}: command {service.get('command')} != {command}")
        env = _airflow_env(service)
        env_shared = {k: v for k, v in env.items() if k not in endpoints}
        if env_shared != shared:
            found.append(f"{name}: shared settings {env_shared} != {shared}")
        if set(env) - set(shared) != endpoints:
            found.append(f"{name}: endpoint settings {sorted(set(env) - set(shared))}")
    for spec in services(CELERY):
        if spec.name in ("postgres", "redis"):
            continue
        command = airflow_command(spec)
        # the native command: the airflow executable, then the topology's, then local options
        native_command = commands[spec.name][1 : 1 + len(command)]
        if native_command != command:
            found.append(f"native {spec.name}: command {native_command} != {command}")
    native_shared = {k: v for k, v in native_env.items() if k not in endpoints}
    if native_shared != shared:
        found.append(f"native shared settings {native_shared} != {shared}")
    if set(native_env) - set(shared) != endpoints:
        found.append(f"native endpoint settings {sorted(set(native_env) - set(shared))}")
    return found


@pytest.fixture(scope="module")
def native_setup(tmp_path_factory):
    return native_deployment(tmp_path_factory.mktemp("home"))


def test_compose_and_the_native_setup_start_the_same_deployment(native_setup):
    commands, env = native_setup
    assert differences(COMPOSE, COMPOSE_ENV_FILE.read_text(), commands, env) == []


def test_every_airflow_setting_is_an_option_of_the_pinned_airflow(native_setup):
    probe = airflow_probe()
    (pin,) = [Requirement(r) for r in PYPROJECT["dependencies"] if r.startswith("apache-airflow=")]
    assert probe["airflow_version"] in pin.specifier, "the probe ran another Airflow"
    options = {(s, o) for s, names in probe["config_options"].items() for o in names}
    keys = set(native_setup[1]) | {
        key for service in COMPOSE["services"].values() for key in _airflow_env(service)
    }
    unknown = sorted(key for key in keys if tuple(key.lower().split("__")[1:3]) not in options)
    assert unknown == []


def test_the_image_is_the_official_one_of_the_pinned_airflow_and_python():
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\d.]+)-python(?P<python>\d+\.\d+)", base)
    assert match, base
    (pin,) = [Requirement(r) for r in PYPROJECT["dependencies"] if r.startswith("apache-airflow=")]
    assert match["airflow"] in pin.specifier
    assert match["python"] in SpecifierSet(PYPROJECT["requires-python"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -c constraints.txt -e ." in dockerfile
    for name, service in COMPOSE["services"].items():
        if _airflow_env(service):
            assert service.get("build") == ".", f"{name} runs the project's image"
            installs = re.search(r"\bpip3? install\b", str(service.get("command")))
            assert not installs, f"{name} installs at start"


def test_no_secret_has_a_default_and_dot_env_is_ignored():
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_JWT_SECRET"):
        uses = re.findall(rf"\$\{{{secret}([^}}]*)\}}", text)
        assert uses and all(u.startswith(":?") for u in uses), (secret, uses)
    assert re.search(r"\$\{AIRFLOW_ADMIN_PASSWORD:\?", text)
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M), "no password in the example"


def test_ports_are_bound_to_loopback_unless_the_user_says_otherwise():
    published = [
        (name, port) for name, s in COMPOSE["services"].items() for port in s.get("ports", [])
    ]
    assert published, "the UI is published"
    for name, port in published:
        assert port.startswith("${AIRFLOW_BIND_ADDRESS:-127.0.0.1}:"), (name, port)


def test_long_running_services_have_healthchecks_and_start_after_their_dependencies():
    for name, service in COMPOSE["services"].items():
        if name != INIT:
            assert "healthcheck" in service, name
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in COMPOSE["services"], (name, dependency)
            if how["condition"] == "service_healthy":
                assert "healthcheck" in COMPOSE["services"][dependency], (name, dependency)
        if _airflow_env(service) and name != INIT:
            assert service["depends_on"][INIT]["condition"] == "service_completed_successfully"
    assert COMPOSE["services"][INIT]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_airflow_service_mounts_shopflow_home_on_one_volume():
    mounts = set()
    for service in COMPOSE["services"].values():
        if _airflow_env(service):
            home = service["environment"]["SHOPFLOW_HOME"]
            mounts |= {v for v in service["volumes"] if v.endswith(f":{home}")}
    (mount,) = mounts
    assert mount.split(":")[0] in COMPOSE["volumes"]


def test_init_creates_the_pool_the_dags_use_with_one_slot():
    command = "\n".join(COMPOSE["services"][INIT]["command"])
    assert "airflow db migrate" in command
    assert re.findall(r"pools set (\S+) (\d+)", command) == [(WAREHOUSE_POOL, "1")]


# -- the comparison catches each kind of drift ----------------------------------------------
def _altered(change) -> dict:
    compose = copy.deepcopy(COMPOSE)
    change(compose["services"])
    return compose


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.pop("airflow-triggerer"),
        lambda s: s["airflow-worker"].update(command=["celery", "worker"]),
        lambda s: s["airflow-scheduler"]["environment"].update(AIRFLOW__CORE__PARALLELISM="32"),
        lambda s: s["airflow-apiserver"]["environment"].pop("AIRFLOW__API__BASE_URL"),
    ],
    ids=["missing-service", "other-command", "other-shared-value", "missing-endpoint"],
)
def test_a_compose_file_that_drifts_is_caught(native_setup, change):
    commands, env = native_setup
    assert differences(_altered(change), COMPOSE_ENV_FILE.read_text(), commands, env) != []


def test_a_stale_env_file_or_a_native_drift_is_caught(native_setup):
    commands, env = native_setup
    text = COMPOSE_ENV_FILE.read_text()
    assert differences(COMPOSE, text.replace("=2\n", "=3\n"), commands, env) != []
    assert differences(COMPOSE, text, commands, {**env, "AIRFLOW__CORE__PARALLELISM": "9"}) != []
    other = {**commands, "worker-1": ["airflow", "celery", "worker", "--queues", "default"]}
    assert differences(COMPOSE, text, other, env) != []
