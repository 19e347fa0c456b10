"""docker-compose.yml is for users (no Docker engine runs here): check its topology natively.

Every Airflow setting it passes must be a real Airflow option, every path it mounts or runs
must exist in the checkout, and the services must depend on each other in a startable order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = [name for name in SERVICES if name.startswith("airflow-")]


def test_services_and_startup_order():
    assert set(SERVICES) == {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
    }
    assert SERVICES["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"):
        condition = SERVICES[name]["depends_on"]["airflow-init"]["condition"]
        assert condition == "service_completed_successfully"


def test_airflow_services_share_checkout_and_home():
    for name in AIRFLOW_SERVICES:
        env = SERVICES[name]["environment"]
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/shopflow/dags"
        assert env["SHOPFLOW_HOME"] == "/opt/shopflow-home"
        assert "./:/opt/shopflow" in SERVICES[name]["volumes"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")


def test_init_installs_pinned_project_and_creates_the_pool():
    command = SERVICES["airflow-init"]["command"]
    assert "-c constraints.txt" in command
    assert (ROOT / "constraints.txt").is_file()
    assert "pools set shopflow_warehouse 1" in command


def test_every_airflow_setting_is_a_real_option():
    variables = sorted(
        {
            key
            for name in AIRFLOW_SERVICES
            for key in SERVICES[name]["environment"]
            if key.startswith("AIRFLOW__")
        }
    )
    assert len(variables) >= 5
    probe = (
        "import json, sys\n"
        "from airflow.configuration import conf\n"
        "unknown = []\n"
        "for variable in sys.argv[1:]:\n"
        "    _, section, option = variable.split('__', 2)\n"
        "    options = conf.configuration_description.get(section.lower(), {}).get('options', {})\n"
        "    if option.lower() not in options:\n"
        "        unknown.append(variable)\n"
        "print(json.dumps(unknown))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *variables],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
