"""Shopflow's Airflow plugin: runbooks and Data Docs served by the API server, linked in the UI.

Registered as the ``airflow.plugins`` entry point ``shopflow_oncall`` (pyproject.toml), so
every installation of the package loads it, locally and in docker-compose. The app itself is
:mod:`shopflow.oncall_app`; every route requires a logged-in Airflow user (the UI's session
cookie is enough, so links in a task log open in the same browser).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from shopflow.oncall import DATA_DOCS_ROUTE, DOCS_ROUTE, REPORTS_ROUTE, URL_PREFIX


def _app():
    from fastapi import Depends

    from shopflow.oncall_app import create_app

    try:
        from airflow.api_fastapi.core_api.security import requires_authenticated
    except ImportError:  # pragma: no cover - a process without the API server's modules
        return create_app()
    return create_app(dependencies=[Depends(requires_authenticated())])


class ShopflowOnCallPlugin(AirflowPlugin):
    """Mounts the on-call app and adds "Shopflow" menu entries to the Airflow UI."""

    name = "shopflow_oncall"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Shopflow on-call"}]
    external_views = [
        {
            "name": "Runbooks",
            "href": f"{URL_PREFIX}/",
            "category": "Shopflow",
            "destination": "nav",
        },
        {
            "name": "Data Docs",
            "href": f"{URL_PREFIX}{DATA_DOCS_ROUTE}/index.html",
            "category": "Shopflow",
            "destination": "nav",
        },
        {
            "name": "Nightly reports",
            "href": f"{URL_PREFIX}{REPORTS_ROUTE}/",
            "category": "Shopflow",
            "destination": "nav",
        },
        {
            # a "Nightly report" tab on every DAG run: the UI fills in {RUN_ID}
            "name": "Nightly report",
            "href": f"{URL_PREFIX}{REPORTS_ROUTE}/run/{{RUN_ID}}",
            "destination": "dag_run",
        },
        {
            "name": "Quality gate runbook",
            "href": f"{URL_PREFIX}{DOCS_ROUTE}/runbooks/quality_gate.md",
            "category": "Shopflow",
            "destination": "nav",
        },
    ]
