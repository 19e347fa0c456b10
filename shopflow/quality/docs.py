"""Data Docs: GX's default local site of the quality context, built once per task.

    $SHOPFLOW_HOME/quality/gx/uncommitted/data_docs/local_site/index.html        (index)
    .../local_site/validations/<suite>/<run_name>/<run_time>/<batch id>.html     (one run)

Each validation stores its result in the context when it runs (its report's
``data_docs_path`` names the page it will get); :func:`build_data_docs` then renders the
pages of this process's validations, the suites and the index in one pass of GX's public
``build_data_docs``. Rendering inside each validation (a Checkpoint's UpdateDataDocsAction)
rebuilds the index every time: GX re-lists every stored result and recompiles its templates
on each build, so per-batch docs would grow with history. One build of 365 pages plus the
index takes about 6 s; with one new page about 0.7 s over 367 stored results.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from shopflow.quality.context import get_context, gx_context_dir
from shopflow.quality.suites import load_suite_specs

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.data_context import FileDataContext
    from great_expectations.data_context.types.resource_identifiers import (
        ValidationResultIdentifier,
    )

    from shopflow.settings import Settings

SITE_NAME = "local_site"

# Per process: context root -> keys of stored validation results whose page is not rendered.
_pending_pages: dict[str, list] = {}


def data_docs_index_path(settings: Settings) -> Path:
    """Where the Data Docs index page lives (built by :func:`build_data_docs`)."""
    return gx_context_dir(settings) / "uncommitted" / "data_docs" / SITE_NAME / "index.html"


def page_to_build(context: FileDataContext, key: ValidationResultIdentifier) -> Path | None:
    """Queue the page of a stored validation result for the next build; return its path."""
    _pending_pages.setdefault(str(context.root_directory), []).append(key)
    urls = context.get_docs_sites_urls(
        resource_identifier=key, site_name=SITE_NAME, only_if_exists=False
    )
    return _url_to_path(urls[0]["site_url"]) if urls else None


def build_data_docs(settings: Settings) -> Path:
    """Render Data Docs: the pages of this process's validations, the suites, and the index.

    Call once per task, after its validations (and before ``raise_if_blocked``, so that the
    pages the error message points at exist). Returns the index page.
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    from shopflow.quality.context import synced_suite

    context = get_context(settings)
    for spec in load_suite_specs(settings).values():
        synced_suite(context, spec)
    root = str(context.root_directory)
    pages = list(_pending_pages.get(root, []))
    suite_keys = [ExpectationSuiteIdentifier(name=s.name) for s in context.suites.all()]
    # One pass for everything: GX's incremental build of just these resources, then the index.
    built = context.build_data_docs(
        site_names=[SITE_NAME], resource_identifiers=(pages + suite_keys) or None, build_index=True
    )
    del _pending_pages.get(root, [])[: len(pages)]
    index = _url_to_path(built.get(SITE_NAME))
    return index if index is not None else data_docs_index_path(settings)


def _url_to_path(url: str | None) -> Path | None:
    if not url:
        return None
    return Path(unquote(urlparse(url).path))
