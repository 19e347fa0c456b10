"""The on-call app the Airflow plugin mounts: runbooks as HTML, Data Docs as static files."""

from __future__ import annotations

import pytest
from fastapi import Depends, HTTPException
from fastapi.testclient import TestClient

from shopflow import oncall
from shopflow.oncall_app import create_app, render_markdown
from shopflow.settings import PROJECT_ROOT, load_settings


@pytest.fixture
def settings(tmp_path):
    return load_settings({"SHOPFLOW_HOME": str(tmp_path / "home")})


@pytest.fixture
def client(settings):
    return TestClient(create_app(lambda: settings))


def test_runbook_renders_with_the_anchors_failure_messages_link_to(client):
    for guidance in oncall.GUIDANCE.values():
        response = client.get(f"{oncall.DOCS_ROUTE}/{guidance.doc}")
        assert response.status_code == 200, guidance.doc
        assert f'id="{guidance.anchor}"' in response.text, guidance
    page = client.get(f"{oncall.DOCS_ROUTE}/runbooks/quality_gate.md").text
    assert "<title>When the quality gate fails</title>" in page
    assert "<table>" in page and "<td><code>negative_price</code></td>" in page


def test_markdown_raw_html_is_escaped_and_repeated_headings_get_distinct_ids():
    rendered = render_markdown("# A\n\n## A\n\n<script>alert(1)</script>\n")
    assert '<h1 id="a">' in rendered and '<h2 id="a-1">' in rendered
    assert "<script>" not in rendered


def test_only_markdown_under_docs_is_served(client):
    assert client.get(f"{oncall.DOCS_ROUTE}/../pyproject.toml").status_code == 404
    assert client.get(f"{oncall.DOCS_ROUTE}/%2e%2e/README.md").status_code == 404
    assert client.get(f"{oncall.DOCS_ROUTE}/runbooks/nope.md").status_code == 404
    assert (PROJECT_ROOT / "docs" / "runbooks").is_dir()


def test_index_lists_every_runbook(client):
    page = client.get("/").text
    for name in ("runbooks/quality_gate.md", "runbooks/models.md", "lifecycle.md"):
        assert f"{oncall.DOCS_ROUTE}/{name}'" in page


def test_data_docs_are_served_from_the_home(client, settings):
    root = oncall.data_docs_root(settings)
    # before the first validation: a page that says so, not an error
    empty = client.get(f"{oncall.DATA_DOCS_ROUTE}/index.html")
    assert empty.status_code == 200 and "No Data Docs yet" in empty.text

    page = root / "validations" / "landing_order_lines" / "run 1" / "batch.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>failing values</html>")
    (root / "index.html").write_text("<html>index</html>")
    url = oncall.data_docs_url("http://testserver", settings, page)
    response = client.get(url.removeprefix("http://testserver" + oncall.URL_PREFIX))
    assert response.status_code == 200
    assert response.text == "<html>failing values</html>"
    assert response.headers["content-type"].startswith("text/html")
    assert client.get(f"{oncall.DATA_DOCS_ROUTE}/index.html").text == "<html>index</html>"
    assert client.get(f"{oncall.DATA_DOCS_ROUTE}/missing.html").status_code == 404
    assert client.get(f"{oncall.DATA_DOCS_ROUTE}/../../../warehouse/x").status_code == 404


def test_guard_dependencies_apply_to_every_route(settings):
    def deny() -> None:
        raise HTTPException(status_code=401, detail="Not authenticated")

    guarded = TestClient(create_app(lambda: settings, dependencies=[Depends(deny)]))
    for path in ("/", f"{oncall.DOCS_ROUTE}/lifecycle.md", f"{oncall.DATA_DOCS_ROUTE}/index.html"):
        assert guarded.get(path).status_code == 401, path


def test_the_plugin_mounts_the_app_outside_airflows_reserved_prefixes():
    from importlib.metadata import entry_points

    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES

    from shopflow.oncall_plugin import ShopflowOnCallPlugin as plugin

    # installed as an entry point: every Airflow component of this installation loads it
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "shopflow_oncall"]
    assert entry.load() is plugin
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == oncall.URL_PREFIX
    assert not any(app["url_prefix"].startswith(p) for p in RESERVED_URL_PREFIXES)
    # logged out: Airflow's own check refuses (the UI's session cookie lets a user in)
    assert TestClient(app["app"]).get("/").status_code == 401
    assert all(view["href"].startswith(oncall.URL_PREFIX) for view in plugin.external_views)
