"""The on-call pages the Airflow API server serves: runbooks and Data Docs.

A small FastAPI app, mounted by Shopflow's Airflow plugin (:mod:`shopflow.oncall_plugin`) at
:data:`shopflow.oncall.URL_PREFIX`, so that the links in a failed task's log open in the
browser that shows the log:

- ``/docs/<file>.md``: a Markdown file under the checkout's ``docs/`` rendered as HTML, with
  GitHub's heading anchors (the runbook links of :mod:`shopflow.oncall` point at sections);
- ``/data-docs/<path>``: the Great Expectations local site under ``$SHOPFLOW_HOME/quality``,
  as static files;
- ``/reports/<date>/``: the nightly's HTML report of a business date (shopflow.report);
  ``/reports/run/<run_id>`` opens the report of a DAG run (the run's link in the Airflow UI);
- ``/``: an index of them.

Only the API server imports this module (FastAPI is one of Airflow's own dependencies).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from shopflow.oncall import (
    DATA_DOCS_ROUTE,
    DOCS_ROUTE,
    REPORTS_ROUTE,
    URL_PREFIX,
    data_docs_root,
    slugify,
)

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1f2328; }
code, pre { background: #f6f8fa; border-radius: 4px; }
pre { padding: .75rem; overflow-x: auto; }
table { border-collapse: collapse; } td, th { border: 1px solid #d0d7de; padding: .3rem .6rem; }
:target { background: #fff8c5; }
nav { font-size: .9rem; margin-bottom: 1rem; }
"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<nav><a href='{URL_PREFIX}/'>Shopflow on-call</a></nav>{body}</body></html>"
    )


def render_markdown(text: str) -> str:
    """Markdown (CommonMark + tables) as HTML; headings get GitHub-style ``id`` anchors."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            slug = slugify(tokens[i + 1].content)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            token.attrSet("id", slug if count == 0 else f"{slug}-{count}")
    return md.renderer.render(tokens, md.options, {})


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that resolves outside ``root``."""
    root = root.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise HTTPException(status_code=404, detail="not found")
    return target


def run_business_date(run_id: str) -> dt.date | None:
    """The business date of a nightly run id: ``nightly__D`` (scheduled or `shopflow run`) is
    D; Airflow's own ``backfill__<run after>`` carries the day after D (shopflow.timetables);
    any other id is read as the date it holds."""
    found = re.search(r"(\d{4}-\d{2}-\d{2})", run_id)
    if not found:
        return None
    day = dt.date.fromisoformat(found.group(1))
    return day - dt.timedelta(days=1) if run_id.startswith("backfill__") else day


def create_app(
    load_settings: Callable[[], Settings] | None = None, dependencies: Sequence = ()
) -> FastAPI:
    """The app. ``load_settings`` is called per request (default: the environment's settings),
    ``dependencies`` guard every route (the plugin passes Airflow's "logged in" check)."""
    if load_settings is None:
        from shopflow.settings import load_settings as _load

        load_settings = _load

    app = FastAPI(title="Shopflow on-call", dependencies=list(dependencies))

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        settings = load_settings()
        docs = settings.project_root / "docs"
        runbooks = sorted(docs.glob("runbooks/*.md")) + sorted(docs.glob("*.md"))
        items = "".join(
            f"<li><a href='{URL_PREFIX}{DOCS_ROUTE}/{p.relative_to(docs).as_posix()}'>"
            f"{html.escape(_title(p))}</a></li>"
            for p in runbooks
        )
        data_docs = f"{URL_PREFIX}{DATA_DOCS_ROUTE}/index.html"
        return _page(
            "Shopflow on-call",
            "<h1>Shopflow on-call</h1><h2>Runbooks</h2>"
            f"<ul>{items}</ul><h2>Data quality</h2>"
            f"<p><a href='{data_docs}'>Data Docs</a>: every validation of every run, with the "
            "failing values.</p>"
            f"<h2>Nightly reports</h2><p><a href='{URL_PREFIX}{REPORTS_ROUTE}/'>Every night's "
            "report</a>: forecasts with actuals, live accuracy, the registry's timeline.</p>",
        )

    @app.get(DOCS_ROUTE + "/{path:path}", response_class=HTMLResponse)
    def doc(path: str) -> HTMLResponse:
        settings = load_settings()
        target = _inside(settings.project_root / "docs", path)
        if target.suffix != ".md" or not target.is_file():
            raise HTTPException(status_code=404, detail=f"no runbook {path}")
        text = target.read_text(encoding="utf-8")
        return _page(_title(target), render_markdown(text))

    @app.get(DATA_DOCS_ROUTE, include_in_schema=False)
    def data_docs_home() -> RedirectResponse:
        return RedirectResponse(f"{URL_PREFIX}{DATA_DOCS_ROUTE}/index.html")

    @app.get(DATA_DOCS_ROUTE + "/{path:path}")
    def data_docs(path: str):
        settings = load_settings()
        root = data_docs_root(settings)
        target = _inside(root, path or "index.html")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            if path in ("", "index.html"):
                return _page(
                    "No Data Docs yet",
                    "<h1>No Data Docs yet</h1><p>They are built by the first validation "
                    f"(the nightly run's <code>ingest_landing</code>) under "
                    f"<code>{html.escape(str(root))}</code>.</p>",
                )
            raise HTTPException(status_code=404, detail=f"no Data Docs page {path}")
        return FileResponse(target)

    @app.get(REPORTS_ROUTE + "/", response_class=HTMLResponse)
    def reports() -> HTMLResponse:
        root = load_settings().reports_dir
        days = sorted(
            (p.name for p in root.glob("*") if (p / "index.html").is_file()), reverse=True
        )
        items = "".join(
            f"<li><a href='{URL_PREFIX}{REPORTS_ROUTE}/{day}/'>{html.escape(day)}</a></li>"
            for day in days
        )
        return _page(
            "Nightly reports",
            "<h1>Nightly reports</h1>" + (f"<ul>{items}</ul>" if items else "<p>None yet.</p>"),
        )

    @app.get(REPORTS_ROUTE + "/run/{run_id}", include_in_schema=False)
    def run_report(run_id: str) -> RedirectResponse:
        day = run_business_date(run_id)
        target = f"{day.isoformat()}/" if day else ""
        return RedirectResponse(f"{URL_PREFIX}{REPORTS_ROUTE}/{target}")

    @app.get(REPORTS_ROUTE + "/{day}/", response_class=HTMLResponse)
    def report(day: str):
        settings = load_settings()
        target = _inside(settings.reports_dir, f"{day}/index.html")
        if not target.is_file():
            return _page(
                "No report",
                f"<h1>No report for {html.escape(day)}</h1><p>The nightly run writes it after "
                f"publishing (task <code>write_report</code>); <code>shopflow report --date "
                f"{html.escape(day)}</code> writes it by hand.</p>",
            )
        return FileResponse(target, media_type="text/html")

    return app


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem
