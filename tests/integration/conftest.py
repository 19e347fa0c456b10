"""A real local Airflow deployment for the end-to-end tests, shared by the session.

`shopflow up` on a temporary SHOPFLOW_HOME with free ports; `shopflow down` at the end, which
must leave none of the processes it started (services, task processes) running.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil
import pytest

from shopflow.deploy.services import free_port_block, port_in_use, status
from shopflow.settings import Settings, load_settings

SHOPFLOW = Path(sys.executable).with_name("shopflow")


@dataclass
class Deployment:
    settings: Settings
    env: dict[str, str]

    def shopflow(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """Run the `shopflow` command against this deployment (stdout is not a terminal)."""
        return subprocess.run(
            [str(SHOPFLOW), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(SHOPFLOW), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def family(settings: Settings) -> list[psutil.Process]:
    """Every running service process of ``settings`` and all their descendants."""
    processes = []
    for state in status(settings):
        if state.alive:
            parent = psutil.Process(state.pid)
            processes += [parent, *parent.children(recursive=True)]
    return processes


def make_deployment(home: Path) -> Deployment:
    env = {
        **os.environ,
        "SHOPFLOW_HOME": str(home),
        "SHOPFLOW_AIRFLOW_PORT": str(free_port_block()),
        "SHOPFLOW_RUN_TIMEOUT_MINUTES": "30",
    }
    return Deployment(load_settings(env), env)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory):
    deploy = make_deployment(tmp_path_factory.mktemp("deploy") / "home")
    started = deploy.shopflow("up", timeout=600)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert deploy.settings.airflow_url in started.stdout
        yield deploy
    finally:
        processes = family(deploy.settings)
        stopped = deploy.shopflow("down", timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        time.sleep(0.5)
        left = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"still running after `shopflow down`: {left}"
        assert not any(s.alive for s in status(deploy.settings))
        assert not port_in_use(deploy.settings.airflow_port)


def read_exports(settings: Settings) -> dict:
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        return {
            "recommendations": con.execute(
                "select * from exports.recommendations order by run_date, customer_id, rank"
            ).df(),
            "demand_forecast": con.execute(
                "select * from exports.demand_forecast order by run_date, product_id, forecast_date"
            ).df(),
            "products": con.execute("select * from exports.products order by product_id").df(),
            "types": con.execute(
                "select table_name, column_name, data_type from information_schema.columns "
                "where table_schema = 'exports' and table_name in "
                "('recommendations', 'demand_forecast') order by table_name, ordinal_position"
            ).fetchall(),
        }
    finally:
        con.close()


@dataclass
class Nightly:
    deployment: Deployment
    run_date: dt.date
    first: dict
    second: dict
    first_output: str
    concurrent: list[tuple[int, str]]


@pytest.fixture(scope="session")
def nightly(deployment) -> Nightly:
    """The tiny shop's last date through the scheduler; then the same date twice at once
    (one request clears the finished run, the other waits for that run)."""
    from shopflow.generator import generate_shop
    from tests.conftest import TINY_SPEC

    settings = deployment.settings
    shop = generate_shop(TINY_SPEC, settings.landing_dir)
    day = shop.last_date.isoformat()
    done = deployment.shopflow("run", "--date", day)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first = read_exports(settings)
    runs = [deployment.popen("run", "--date", day), deployment.popen("run", "--date", day)]
    concurrent = []
    for process in runs:
        out, _ = process.communicate(timeout=1200)
        concurrent.append((process.returncode, out))
    second = read_exports(settings)
    return Nightly(deployment, shop.last_date, first, second, done.stdout, concurrent)
