"""Which Celery queue each task goes to, and the executor an installation runs (no service
starts: these run in `make test` too)."""

from __future__ import annotations

import pytest

from shopflow.deploy import services
from shopflow.deploy.env import airflow_env, deployed_executor, record_executor
from shopflow.deploy.hostname import worker_hostname
from shopflow.deploy.services import ServiceError
from shopflow.deploy.topology import CELERY, DEFAULT_QUEUE, HOME_QUEUE, LOCAL
from shopflow.settings import load_settings
from tests.dags.airflow_probe import airflow_probe

# tasks that never touch SHOPFLOW_HOME: any worker may run them
ANY_WORKER_TASKS = {"dbt_model", "any_task_failed"}


def test_tasks_touching_shopflow_home_go_to_the_home_queue_the_rest_anywhere():
    dags = airflow_probe()["dags"]
    queues = {
        (dag_id, task_id): task["queue"]
        for dag_id, dag in dags.items()
        for task_id, task in dag["tasks"].items()
    }
    assert len(queues) > 10
    wrong = {
        key: queue
        for key, queue in queues.items()
        if queue != (DEFAULT_QUEUE if key[1] in ANY_WORKER_TASKS else HOME_QUEUE)
    }
    assert wrong == {}


def test_the_executor_is_the_setting_else_the_one_last_started(tmp_path):
    plain = load_settings({"SHOPFLOW_HOME": str(tmp_path)})
    assert deployed_executor(plain) == LOCAL
    record_executor(plain, CELERY)
    assert deployed_executor(plain) == CELERY
    env = airflow_env(plain)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert f":{plain.redis_port}/" in env["AIRFLOW__CELERY__BROKER_URL"]
    local = load_settings({"SHOPFLOW_HOME": str(tmp_path), "SHOPFLOW_AIRFLOW_EXECUTOR": "local"})
    assert airflow_env(local)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///")
    with pytest.raises(ValueError, match="SHOPFLOW_AIRFLOW_EXECUTOR"):
        load_settings({"SHOPFLOW_AIRFLOW_EXECUTOR": "kubernetes"})


def test_up_refuses_another_executor_while_one_is_running(tmp_path, monkeypatch):
    settings = load_settings({"SHOPFLOW_HOME": str(tmp_path), "SHOPFLOW_AIRFLOW_EXECUTOR": CELERY})
    record_executor(settings, LOCAL)
    running = [services.ServiceState("scheduler", 1, True, tmp_path / "log")]
    monkeypatch.setattr(services, "status", lambda s: running)
    with pytest.raises(ServiceError, match="up with the local executor"):
        services.up(settings, say=lambda _: None)


def test_each_native_worker_records_its_own_name(monkeypatch):
    monkeypatch.setenv("SHOPFLOW_WORKER_NAME", "worker-2")
    assert worker_hostname().startswith("worker-2@")
    monkeypatch.delenv("SHOPFLOW_WORKER_NAME")
    assert "@" not in worker_hostname()
