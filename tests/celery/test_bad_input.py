"""`shopflow up --executor celery` refuses bad ground at once, before starting anything.

Cheap (no service starts), so these run in `make test` too.
"""

from __future__ import annotations

import os
import socket

import pytest

from shopflow.deploy import infra, services
from shopflow.deploy.env import executor_file
from shopflow.deploy.services import PORT_BLOCK, ServiceError, free_port_block, status
from shopflow.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    port = free_port_block(PORT_BLOCK["celery"])
    return load_settings(
        {
            "SHOPFLOW_HOME": str(tmp_path / "home"),
            "SHOPFLOW_AIRFLOW_PORT": str(port),
            "SHOPFLOW_AIRFLOW_EXECUTOR": "celery",
        }
    )


def _nothing_started(settings) -> None:
    assert not any(state.alive for state in status(settings))
    assert not list(settings.airflow_services_dir.glob("*.pid"))
    # a later plain `shopflow up` is not stuck with an executor that never started
    assert not executor_file(settings).exists()


@pytest.mark.parametrize("missing", ["postgres", "redis"])
def test_missing_postgres_or_redis_says_to_run_the_install_script(settings, monkeypatch, missing):
    if missing == "postgres":
        monkeypatch.setattr(infra, "postgres_bin_dir", lambda: None)
    else:
        real_which = infra.shutil.which
        monkeypatch.setattr(
            infra.shutil, "which", lambda n: None if n == "redis-server" else real_which(n)
        )
    with pytest.raises(ServiceError) as caught:
        services.up(settings, say=lambda _: None)
    message = str(caught.value)
    assert "scripts/install_services.sh" in message
    assert ("PostgreSQL" if missing == "postgres" else "Redis") in message
    _nothing_started(settings)


@pytest.mark.parametrize("which", ["postgres_port", "redis_port", "airflow_port"])
def test_a_taken_port_names_the_port_and_the_process_holding_it(settings, monkeypatch, which):
    monkeypatch.setattr(infra, "check_binaries", lambda: None)
    port = getattr(settings, which)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(ServiceError) as caught:
            services.up(settings, say=lambda _: None)
    message = str(caught.value)
    assert f"port {port} " in message
    assert f"pid {os.getpid()}" in message, message
    assert "Nothing was started" in message
    _nothing_started(settings)
