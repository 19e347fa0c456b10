"""What on-call needs next to a failure: what to do, the runbook section, the Data Docs page.

A data error's message names the file and the rule. :func:`failure_message` adds the rest of
what the on-call engineer needs at 3 a.m., as lines a browser can follow from the task log:

    ingest_landing for 2025-04-10: Data quality gate stopped the run: ...
        Data Docs: http://localhost:8080/shopflow/data-docs/validations/.../batch.html
    What to do: ...
    Runbook: http://localhost:8080/shopflow/docs/runbooks/quality_gate.md#partition-rules-...
    Data Docs index: http://localhost:8080/shopflow/data-docs/index.html

The links point at the Airflow API server, which serves the runbooks and Data Docs through
Shopflow's plugin (:mod:`shopflow.oncall_plugin`, app in :mod:`shopflow.oncall_app`) under
:data:`URL_PREFIX`; the base URL is ``Settings.ui_url``. The mapping from error type
(and step) to runbook section is :data:`GUIDANCE`; a test checks every section exists.

Light on purpose (no Airflow, no heavy libraries): the DAG's tasks import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

# Where the plugin's app is mounted in the API server, and its two parts.
URL_PREFIX = "/shopflow"
DOCS_ROUTE = "/docs"  # Markdown under docs/, rendered: /shopflow/docs/runbooks/quality_gate.md
DATA_DOCS_ROUTE = "/data-docs"  # the GX local site, as static files
REPORTS_ROUTE = "/reports"  # the nightly HTML reports: /shopflow/reports/<date>/

QUALITY_GATE = "runbooks/quality_gate.md"
MODELS = "runbooks/models.md"
DBT_BUILD = "runbooks/dbt_build.md"
LIFECYCLE = "lifecycle.md"
MACHINE = "runbooks/machine.md"


@dataclass(frozen=True)
class Guidance:
    """What to do about one kind of failure, and the runbook section that explains it."""

    doc: str  # a Markdown file under docs/
    section: str  # the heading's text, exactly as in the file
    action: str  # plain words: what to do now

    @property
    def anchor(self) -> str:
        return slugify(self.section)


_RERUN = "then clear this task in the Airflow UI (downstream tasks follow)"

# (error type name, step) -> guidance; step None is the fallback for that error type.
# Keyed by class name so that this module imports none of the modules that define them.
GUIDANCE: dict[tuple[str, str | None], Guidance] = {
    ("LandingFormatError", None): Guidance(
        QUALITY_GATE,
        "Reading a file (`ingest_landing`, `LandingFormatError`, blocking)",
        "the file named above cannot be read as the landing contract says and nothing was "
        "loaded. Ask the shop for a corrected file (or fix an obvious problem yourself), "
        f"replace it in its landing folder, {_RERUN}.",
    ),
    ("QualityGateError", "ingest_landing"): Guidance(
        QUALITY_GATE,
        "Partition rules (suite `landing_partitions`, blocking)",
        "the batch named above broke a blocking rule and nothing was loaded; yesterday's "
        "exports are intact. Open its Data Docs page for the failing values, get a corrected "
        "file from the shop (or remove the broken lines if the rest is right, or accept a real "
        f"volume spike with a `_volume_ok` marker), replace it in its landing folder, {_RERUN}.",
    ),
    ("QualityGateError", "validate_marts"): Guidance(
        QUALITY_GATE,
        "Marts (`validate_marts`, after `dbt build`)",
        "the warehouse built from the landing data breaks a rule (see the Data Docs page); "
        "nothing was scored or published. Rebuild the warehouse with a full refresh as the "
        f"runbook says, {_RERUN}.",
    ),
    ("QualityGateError", "validate_predictions"): Guidance(
        QUALITY_GATE,
        "Predictions (`validate_predictions`, blocking except the personalisation rule)",
        "the champion model's predictions break a rule, so nothing was published; yesterday's "
        "exports are intact. Check `shopflow models list` and roll back a new champion that is "
        f"at fault (`shopflow models rollback <model> --reason ...`), {_RERUN}.",
    ),
    ("QualityGateError", None): Guidance(
        QUALITY_GATE,
        "Where to look",
        "a quality gate blocked the data named above: read its Data Docs page, fix the data, "
        f"{_RERUN}.",
    ),
    ("DbtBuildError", None): Guidance(
        DBT_BUILD,
        "A model or a dbt test failed",
        "dbt built a model wrong or one of its tests failed (named above). Find the failing "
        "rows with the test's SQL from the dbt log, fix the landing data or the model, "
        f"{_RERUN}.",
    ),
    ("NoChampionError", None): Guidance(
        MODELS,
        "No champion",
        "a model has no champion to score with. Run `shopflow retrain --date <date>` (or clear "
        "`ensure_models`, which trains the first models), then clear this task.",
    ),
    ("ArtifactIntegrityError", None): Guidance(
        MODELS,
        "A model artifact is missing or corrupted",
        "the champion's files on disk do not match the registry; nothing was scored with them. "
        "Restore the artifact folder from backup, or roll back to the previous champion "
        "(`shopflow models rollback <model> --reason ...`), then clear this task.",
    ),
    ("InvalidPredictionsError", None): Guidance(
        MODELS,
        "Predictions with NaN or infinite values",
        "the champion produced values that can never be published; nothing was written. Roll "
        "it back (`shopflow models rollback <model> --reason ...`), then clear this task.",
    ),
    ("PostPublishCheckError", None): Guidance(
        LIFECYCLE,
        'Runbook: "the model was rolled back last night"',
        "a new champion failed the post-publish checks. Read the message: if the exports were "
        "rebuilt, analysts can use them and there is nothing to do tonight (do not clear this "
        "task: it is the record); otherwise follow the runbook.",
    ),
    ("MissingInputsError", None): Guidance(
        MODELS,
        "Training inputs are not built",
        "the warehouse lacks the features this training or backtest reads as of the date "
        "(nothing was trained or written). Run the command the message names (the nightly run "
        "or the retrain for that date builds them), then clear this task.",
    ),
    ("RetrainNotPossibleError", None): Guidance(
        MODELS,
        "A retrain cannot start",
        "the warehouse or the registry is not ready for this retrain: do what the message "
        "says (usually `shopflow run --date <date>` first), then clear this task.",
    ),
    # machine errors (shopflow.machine): not retried, since waiting does not free a disk
    ("MachineError", None): Guidance(
        MACHINE,
        "Runbook: machine errors",
        f"the message names the path and what the machine refused; fix that, {_RERUN}.",
    ),
    ("DiskFullError", None): Guidance(
        MACHINE,
        "The disk is full",
        "free space on the filesystem the message names (old backups, $SHOPFLOW_HOME/tmp, "
        f"old logs); published exports were not changed. {_RERUN[0].upper()}{_RERUN[1:]}.",
    ),
    ("FileHeldError", None): Guidance(
        MACHINE,
        "A file is held by another process",
        "the message names the process (PID and command) holding the file; ask its owner to "
        "close it, or stop it if it is abandoned (analysts should read "
        f"exports/shopflow.duckdb, never the warehouse), {_RERUN}.",
    ),
    ("PermissionDeniedError", None): Guidance(
        MACHINE,
        "Permission denied",
        "give the user the step runs as write access to the path the message names "
        f"(chown/chmod), {_RERUN}.",
    ),
}

FALLBACK = Guidance(
    QUALITY_GATE,
    "How to rerun",
    f"read the message above, fix its cause, {_RERUN}.",
)


def slugify(heading: str) -> str:
    """The anchor GitHub (and :mod:`shopflow.oncall_app`) gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def guidance_for(error_type: str, step: str | None = None) -> Guidance:
    """What to do about an error of type ``error_type`` (class name) raised by ``step``."""
    return GUIDANCE.get((error_type, step)) or GUIDANCE.get((error_type, None)) or FALLBACK


def runbook_url(base_url: str, guidance: Guidance) -> str:
    """The runbook section as served by the API server."""
    return f"{base_url.rstrip('/')}{URL_PREFIX}{DOCS_ROUTE}/{guidance.doc}#{guidance.anchor}"


def data_docs_root(settings: Settings) -> Path:
    """The folder of the GX local site (its index.html and every validation page)."""
    from shopflow.quality import data_docs_index_path

    return data_docs_index_path(settings).parent


def data_docs_url(base_url: str, settings: Settings, page: Path | str | None = None) -> str:
    """URL of a Data Docs page (a file under :func:`data_docs_root`; default the index)."""
    root = data_docs_root(settings)
    relative = Path(page).relative_to(root).as_posix() if page is not None else "index.html"
    return f"{base_url.rstrip('/')}{URL_PREFIX}{DATA_DOCS_ROUTE}/{quote(relative)}"


def link_data_docs(text: str, settings: Settings, base_url: str) -> str:
    """``text`` with every Data Docs file path replaced by its URL on the API server."""
    root = str(data_docs_root(settings))
    pattern = re.compile(re.escape(root) + r"/\S+")
    return pattern.sub(lambda m: data_docs_url(base_url, settings, m.group(0)), text)


def failure_message(
    step: str, ds: str, error: BaseException, settings: Settings | None = None
) -> str:
    """The task's failure message: what failed, then what to do and the links to follow."""
    return with_guidance(f"{step} for {ds}: {error}", type(error).__name__, step, settings)


def with_guidance(
    message: str, error_type: str, step: str | None = None, settings: Settings | None = None
) -> str:
    """``message`` (Data Docs paths made links) + what to do + runbook (+ Data Docs) links."""
    if settings is None:
        from shopflow.settings import load_settings

        settings = load_settings()
    base = settings.ui_url
    guidance = guidance_for(error_type, step)
    lines = [
        link_data_docs(message.rstrip(), settings, base),
        f"What to do: {guidance.action}",
        f"Runbook: {runbook_url(base, guidance)}",
    ]
    if error_type == "QualityGateError":
        lines.append(f"Data Docs index: {data_docs_url(base, settings)}")
    return "\n".join(lines)


def task_log_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index=None) -> str:
    """The task instance's page (its log) in the Airflow 3 UI."""
    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    return (
        f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
        f"/tasks/{quote(task_id)}{mapped}"
    )


def failure_summary(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    ds: str | None,
    message: str,
    settings: Settings,
    map_index: int | None = None,
) -> tuple[str, str]:
    """Subject and body of a failure alert: the task's failure message (what to do and its
    links included) with the task, the date and a link to the task's log."""
    base = settings.ui_url
    if "\nRunbook: " not in message:  # not a data error: retried, then failed (infrastructure)
        message = with_guidance(message.strip() or "(no message)", "", None, settings)
    subject = f"[Shopflow] {dag_id}.{task_id} failed for {ds or run_id}"
    body = "\n".join(
        [
            f"Task: {dag_id}.{task_id}"
            + (f" [{map_index}]" if map_index not in (None, -1) else ""),
            f"Business date: {ds or '-'} (run {run_id})",
            f"Log: {task_log_url(base, dag_id, run_id, task_id, map_index)}",
            "",
            message,
        ]
    )
    return subject, body
