"""docker-compose.yml is for users (no Docker engine runs here): check that it can work.

Each test checks something that breaks a `docker compose up` when it drifts from the rest of
the checkout: Airflow options the pinned Airflow does not know, a DAG folder or a working
directory that is not the checkout, services whose settings disagree with each other, a
start order Airflow cannot come up in, a pool the DAGs do not use.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

# the pool the Airflow runner creates with one slot (`pools set <pool> 1`)
from shopflow.warehouse import WAREHOUSE_POOL
from tests.dags.airflow_probe import airflow_probe

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def _airflow_settings(service: dict) -> dict[str, str]:
    return {k: v for k, v in service.get("environment", {}).items() if k.startswith("AIRFLOW__")}


AIRFLOW_SERVICES = {name: s for name, s in SERVICES.items() if _airflow_settings(s)}
(MIGRATE,) = [name for name, s in SERVICES.items() if "airflow db migrate" in _command(s)]
(API_SERVER,) = [name for name, s in SERVICES.items() if "airflow api-server" in _command(s)]


def _host_path(service: dict, container_path: str) -> Path | None:
    """The checkout path a bind mount of ``service`` maps ``container_path`` to, if any."""
    target = PurePosixPath(container_path)
    for volume in service.get("volumes", []):
        source, mount = volume.split(":")[:2]
        if source.startswith(".") and target.is_relative_to(mount):
            return (ROOT / source / target.relative_to(mount)).resolve()
    return None


def _named_volume(service: dict, container_path: str) -> str | None:
    for volume in service.get("volumes", []):
        source, mount = volume.split(":")[:2]
        if mount == container_path and not source.startswith((".", "/")):
            return source
    return None


def test_compose_file_has_airflow_services_to_check():
    assert len(AIRFLOW_SERVICES) >= 3
    assert MIGRATE in AIRFLOW_SERVICES and API_SERVER in AIRFLOW_SERVICES


def test_every_airflow_setting_is_an_option_of_the_pinned_airflow():
    probe = airflow_probe()
    (pin,) = [Requirement(r) for r in PYPROJECT["dependencies"] if r.startswith("apache-airflow")]
    assert probe["airflow_version"] in pin.specifier, "the probe ran another Airflow"
    options = {(s, o) for s, names in probe["config_options"].items() for o in names}
    variables = {key for s in AIRFLOW_SERVICES.values() for key in _airflow_settings(s)}
    unknown = sorted(
        key
        for key in variables
        if (key.split("__")[1].lower(), key.split("__", 2)[2].lower()) not in options
    )
    assert unknown == []


def test_the_image_python_satisfies_the_project():
    for name, service in AIRFLOW_SERVICES.items():
        match = re.match(r"python:(\d+\.\d+)", service["image"])
        assert match, f"{name}: Airflow services run on an official python image"
        assert match.group(1) in SpecifierSet(PYPROJECT["requires-python"]), name


def test_airflow_services_share_one_configuration():
    # the scheduler signs task tokens the API server must accept (JWT secret), both need the
    # same database and DAG folder: any difference breaks task execution
    settings = {name: _airflow_settings(s) for name, s in AIRFLOW_SERVICES.items()}
    first = next(iter(settings.values()))
    assert {name: s for name, s in settings.items() if s != first} == {}


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_parses_the_dags_of_this_checkout(name):
    service = AIRFLOW_SERVICES[name]
    dags = _host_path(service, service["environment"]["AIRFLOW__CORE__DAGS_FOLDER"])
    assert dags == (ROOT / "dags").resolve()


def test_the_project_is_installed_from_the_checkout_with_the_pinned_versions():
    service = SERVICES[MIGRATE]
    workdir = _host_path(service, service["working_dir"])
    assert workdir == ROOT.resolve()
    install = re.search(r"pip install (.*?)(&&|$)", _command(service))
    assert install, "the init service installs the project"
    arguments = install.group(1).split()
    assert {"-c", "-e"} <= set(arguments), "pinned versions (-c) of the checkout (-e)"
    constraints = arguments[arguments.index("-c") + 1]
    assert (workdir / constraints).read_text() == (ROOT / "constraints.txt").read_text()
    editable = arguments[arguments.index("-e") + 1]
    assert (workdir / editable / "pyproject.toml").is_file()


def test_every_airflow_service_sees_the_same_shopflow_home():
    # tasks (run by the scheduler's executor) and the other services read and write the same
    # DuckDB files and model registry: one named volume, mounted where SHOPFLOW_HOME points
    volumes = {
        name: _named_volume(service, service["environment"].get("SHOPFLOW_HOME", ""))
        for name, service in AIRFLOW_SERVICES.items()
    }
    (volume,) = set(volumes.values())
    assert volume in COMPOSE["volumes"], volumes


def test_the_metadata_database_is_the_postgres_service():
    url = next(iter(AIRFLOW_SERVICES.values()))["environment"][
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    ]
    parts = re.fullmatch(
        r"(?P<dialect>[\w+]+)://(?P<user>[^:@]+):(?P<password>.*)"
        r"@(?P<host>[\w-]+)(:\d+)?/(?P<db>\w+)",
        url,
    )
    assert parts, url
    database = SERVICES[parts["host"]]
    env = database["environment"]
    assert (parts["user"], parts["password"], parts["db"]) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    # the driver named in the URL is installed next to Airflow
    driver = parts["dialect"].split("+")[1]
    assert re.search(rf"\b{driver}(-binary)?\b", _command(SERVICES[MIGRATE]))


def test_tasks_reach_the_execution_api_of_the_api_server():
    url = next(iter(AIRFLOW_SERVICES.values()))["environment"][
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"
    ]
    parts = re.fullmatch(r"http://(?P<host>[\w-]+):(?P<port>\d+)/execution/", url)
    assert parts, url
    assert parts["host"] == API_SERVER
    port = re.search(r"--port (\d+)", _command(SERVICES[API_SERVER]))
    assert parts["port"] == (port.group(1) if port else "8080")


def test_services_start_in_an_order_airflow_can_come_up_in():
    for name, service in SERVICES.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            if how["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], (name, dependency)
    # nothing talks to the metadata database before the migration has finished
    for name in set(AIRFLOW_SERVICES) - {MIGRATE}:
        condition = SERVICES[name]["depends_on"].get(MIGRATE, {}).get("condition")
        assert condition == "service_completed_successfully", name
    url = AIRFLOW_SERVICES[MIGRATE]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    database = re.search(r"@([\w-]+)", url).group(1)
    assert SERVICES[MIGRATE]["depends_on"][database]["condition"] == "service_healthy"


def test_init_creates_the_pool_the_dags_use_with_one_slot():
    pools = re.findall(r"pools set (\S+) (\d+)", _command(SERVICES[MIGRATE]))
    assert pools == [(WAREHOUSE_POOL, "1")]
