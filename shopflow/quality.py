"""Data quality gate: committed Great Expectations suites run against pandas DataFrames.

Suites are declared data, one JSON file per suite in ``expectations/suites/<name>.json``
(GX 1.x ExpectationSuite form: ``name``, ``expectations`` with ``type`` / ``kwargs`` /
``meta``). Shopflow adds two conventions on top of GX:

* ``meta.severity`` on the suite (``"blocking"`` or ``"warning"``), optionally overridden per
  expectation; a blocking failure stops the pipeline (:func:`raise_if_blocked`), a warning is
  reported and the run goes on.
* ``meta.description`` on every expectation: the rule in plain words ("quantity is never
  zero"). Failure messages, the task log and :class:`QualityGateError` use it, so on-call reads
  rules, not expectation class names.
* ``meta.severity: "quarantine"`` on a row-level expectation (with a short ``meta.rule`` id):
  the rows that break it are set aside instead of blocking the batch. The report lists them
  (:attr:`FailedExpectation.row_indexes`, the frame's index labels); the caller moves them to
  the quarantine table and decides with its own blocking rule how large a share it tolerates
  (see shopflow.ingest).
* ``meta.unit`` on the suite: what one row of the validated frame is ("partition",
  "product"); messages then say "2 partitions break it".
* ``meta.id_columns`` on the suite: columns that identify a row (e.g. ``["product_id"]``);
  examples in messages then name the row: ``(product_id='P7', days_present=40)``.

The GX context is a *file* context rooted at ``$SHOPFLOW_HOME/quality/gx`` (runtime state,
never in the repo). On first use of a suite in a process its committed JSON is written into
that context (add or update, only when it differs from what the context holds), so the repo
stays the single source of truth. Validation results go to the context's validation store
and render as Data Docs in GX's default local site::

    $SHOPFLOW_HOME/quality/gx/uncommitted/data_docs/local_site/index.html        (index)
    .../local_site/validations/<suite>/<run_name>/<run_time>/<batch>.html        (one run)

Shopflow's own plain-words report of each validation is written (overwritten on rerun) to
``$SHOPFLOW_HOME/quality/reports/<run_name>/<suite>__<batch>.json``.

Data Docs are built by a separate call, :func:`build_data_docs`, once per task after its
validations; :func:`validate_frame` only stores the result, and its report's
``data_docs_path`` names the page that call renders. Measured on a 1,000-row order_lines
frame (11 expectations): importing GX takes 2.5-3 s once per process; the first
validate_frame (scaffolding the context, syncing the suite) 0.3-0.45 s; every later one about
0.11 s. Rendering the page inside each validation cost 0.08 s per batch with an empty store
and 0.22 s with 366 stored results (GX re-lists every stored result and recompiles its
templates on each build), so per-batch docs would grow with history. One build_data_docs
call renders 365 pages plus the index in 6 s; with one new page it takes 0.7 s over 367
stored results. A first ingest of 365 partitions: 44 s validating + 6 s docs, against about
100 s with a page per validation.

GX 1.24.1 ships no usage-statistics client (``analytics_enabled`` is only a config field);
its PyPI version checker has no callers, and notification actions (Slack, email, ...) are the
only other network code, which we do not configure.
``analytics_enabled: false`` is still written to the context config so that a future GX
version does not report by default. Progress bars are switched off: they would fill the
Airflow task log.

Heavy imports (great_expectations, pandas) happen inside functions only: Airflow parses DAG
files that import this module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.data_context import FileDataContext

    from shopflow.settings import Settings

logger = logging.getLogger(__name__)

BLOCKING = "blocking"
WARNING = "warning"
QUARANTINE = "quarantine"
SEVERITIES = (BLOCKING, WARNING)  # of a suite
EXPECTATION_SEVERITIES = (BLOCKING, WARNING, QUARANTINE)  # of one expectation

# Names inside the GX context. One pandas data source with one DataFrame asset serves every
# suite: the frame is passed at validation time, and the batch label travels in the result key.
_GX_DIR = "gx"
_SITE_NAME = "local_site"
_DATASOURCE_NAME = "shopflow_frames"
_ASSET_NAME = "frame"
_BATCH_DEFINITION_NAME = "whole_frame"
# GX keeps up to 20 example values per failed rule for Data Docs; messages show the first 5.
_PARTIAL_UNEXPECTED_COUNT = 20
_EXAMPLES_IN_MESSAGE = 5


# -- public result types ---------------------------------------------------------------------
@dataclass(frozen=True)
class FailedExpectation:
    """One rule that did not hold for a batch."""

    expectation: str
    column: str | None
    description: str
    severity: str
    unexpected_count: int | None
    unexpected_examples: list = field(default_factory=list)
    observed: str | None = None  # what was found when the rule is not about rows
    rule: str | None = None  # short id of a quarantine rule (meta.rule), e.g. "negative_price"
    unit: str = "row"  # what one row of the validated frame is (suite meta.unit)
    # Index labels of the rows that broke a quarantine rule (empty for other severities).
    row_indexes: tuple = field(default=(), repr=False, compare=False)

    def message(self) -> str:
        """One line in plain words, e.g. ``quantity is never zero: 3 rows break it (e.g. 0)``."""
        if self.unexpected_count is not None:
            count = self.unexpected_count
            unit = self.unit if count == 1 else _plural(self.unit)
            rows = f"{count} {unit} {'breaks' if count == 1 else 'break'} it"
            # Examples of a "never missing" rule are all nulls: they add nothing.
            examples = self.unexpected_examples[:_EXAMPLES_IN_MESSAGE]
            if examples and self.expectation != "expect_column_values_to_not_be_null":
                rows += f" (e.g. {', '.join(_format_value(v) for v in examples)})"
            return f"{self.description}: {rows}"
        return f"{self.description}: {self.observed or 'failed'}"


@dataclass(frozen=True)
class QualityReport:
    """The outcome of validating one batch against one suite."""

    suite: str
    batch: str
    success: bool
    blocking_failures: list[FailedExpectation]
    warnings: list[FailedExpectation]
    evaluated: int
    data_docs_path: Path | None
    quarantined: list[FailedExpectation] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        """True if any blocking rule failed: the batch must not flow downstream."""
        return bool(self.blocking_failures)

    def quarantined_indexes(self) -> set:
        """Index labels of every row that broke at least one quarantine rule."""
        return {index for failure in self.quarantined for index in failure.row_indexes}

    def summary(self) -> str:
        """Multi-line plain-words text for the task log."""
        failed = len(self.blocking_failures) + len(self.warnings) + len(self.quarantined)
        if failed == 0:
            verdict = f"all {self.evaluated} rules hold"
        else:
            verdict = (
                f"{failed} of {self.evaluated} rules broken "
                f"({len(self.blocking_failures)} blocking, {len(self.warnings)} warning"
                + (f", {len(self.quarantined)} quarantine" if self.quarantined else "")
                + ")"
            )
        lines = [f"Quality check of {self.batch} against suite {self.suite}: {verdict}"]
        lines += [f"  BLOCKING: {f.message()}" for f in self.blocking_failures]
        lines += [f"  warning: {f.message()}" for f in self.warnings]
        lines += [f"  quarantine: {f.message()}" for f in self.quarantined]
        if self.data_docs_path is not None:
            lines.append(f"  Data Docs: {self.data_docs_path}")
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("blocking_failures", "warnings", "quarantined"):
            for failure in data[key]:
                failure.pop("row_indexes", None)  # may be long; the quarantine table has them
        data["data_docs_path"] = str(self.data_docs_path) if self.data_docs_path else None
        data["blocked"] = self.blocked
        return data


class QualityGateError(Exception):
    """Raised by :func:`raise_if_blocked`; ``reports`` holds every report it was given."""

    def __init__(self, reports: list[QualityReport]):
        self.reports = list(reports)
        blocked = [r for r in self.reports if r.blocked]
        noun = "batch" if len(blocked) == 1 else "batches"
        lines = [f"Data quality gate stopped the run: {len(blocked)} {noun} broke blocking rules."]
        for report in blocked:
            lines.append(f"- {report.batch} (suite {report.suite}):")
            lines += [f"    {f.message()}" for f in report.blocking_failures]
            if report.data_docs_path is not None:
                lines.append(f"    Data Docs: {report.data_docs_path}")
        # Why a share of rows was quarantined is in the row-level reports: show them too.
        row_level = [r for r in self.reports if r.quarantined]
        if row_level:
            lines.append("Row-level problems (quarantined when the rest of the batch passes):")
        for report in row_level:
            lines.append(f"- {report.batch} (suite {report.suite}):")
            lines += [f"    {f.message()}" for f in report.quarantined]
        super().__init__("\n".join(lines))

    @property
    def blocked_reports(self) -> list[QualityReport]:
        return [r for r in self.reports if r.blocked]


# -- suites ----------------------------------------------------------------------------------
def suites_dir(settings: Settings) -> Path:
    return settings.expectations_dir / "suites"


def load_suite_specs(settings: Settings) -> dict[str, dict]:
    """Every committed suite, name -> parsed JSON, checked against Shopflow's conventions.

    Cheap (no GX import): usable in DAG integrity tests and lint steps.
    """
    specs = {}
    for path in sorted(suites_dir(settings).glob("*.json")):
        spec = json.loads(path.read_text())
        _check_spec(spec, path)
        specs[spec["name"]] = spec
    return specs


def _load_suite_spec(settings: Settings, suite_name: str) -> dict:
    path = suites_dir(settings) / f"{suite_name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in suites_dir(settings).glob("*.json"))) or "none"
        raise KeyError(f"no quality suite {suite_name!r} in {path.parent} (known: {known})")
    spec = json.loads(path.read_text())
    _check_spec(spec, path)
    return spec


def _check_spec(spec: dict, path: Path) -> None:
    if spec.get("name") != path.stem:
        raise ValueError(f"{path}: suite name {spec.get('name')!r} must equal the file name")
    severity = spec.get("meta", {}).get("severity")
    if severity not in SEVERITIES:
        raise ValueError(f"{path}: meta.severity must be one of {SEVERITIES}, got {severity!r}")
    expectations = spec.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ValueError(f"{path}: a suite needs a non-empty 'expectations' list")
    for number, expectation in enumerate(expectations, start=1):
        meta = expectation.get("meta") or {}
        where = f"{path}: expectation #{number} ({expectation.get('type')})"
        if not str(meta.get("description") or "").strip():
            raise ValueError(f"{where} needs meta.description, the rule in plain words")
        if meta.get("severity", severity) not in EXPECTATION_SEVERITIES:
            raise ValueError(f"{where}: meta.severity must be one of {EXPECTATION_SEVERITIES}")
        if meta.get("severity") == QUARANTINE and not str(meta.get("rule") or "").strip():
            raise ValueError(f"{where}: a quarantine rule needs meta.rule, a short rule id")


def _build_suite(spec: dict) -> ExpectationSuite:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    # ExpectationSuite() logs and *drops* an invalid expectation instead of raising; build
    # each one first so a typo in a committed suite fails loudly.
    for number, entry in enumerate(spec["expectations"], start=1):
        try:
            ExpectationConfiguration(**entry).to_domain_obj()
        except Exception as exc:
            raise ValueError(
                f"suite {spec['name']}: expectation #{number} ({entry.get('type')}) is not "
                f"valid: {exc}"
            ) from exc
    return gx.ExpectationSuite(
        name=spec["name"],
        expectations=[dict(entry) for entry in spec["expectations"]],
        meta=dict(spec.get("meta") or {}),
    )


# Per process: (context root, suite name) -> (spec as canonical JSON, suite in the context).
_synced_suites: dict[tuple[str, str], tuple[str, ExpectationSuite]] = {}


def _synced_suite(context: FileDataContext, spec: dict) -> ExpectationSuite:
    """The context's copy of a committed suite, written into the context if it differs."""
    from great_expectations.exceptions import DataContextError

    key = (str(context.root_directory), spec["name"])
    canonical = json.dumps(spec, sort_keys=True)
    cached = _synced_suites.get(key)
    if cached is not None and cached[0] == canonical:
        return cached[1]
    wanted = _build_suite(spec)
    try:
        stored = context.suites.get(spec["name"])
    except DataContextError:
        stored = None
    # Write only on change: parallel tasks share the context folder.
    suite = stored if stored == wanted else context.suites.add_or_update(wanted)
    _synced_suites[key] = (canonical, suite)
    return suite


# -- the GX context --------------------------------------------------------------------------
def gx_context_dir(settings: Settings) -> Path:
    """Root of the GX file context (runtime state, not in the repo)."""
    return settings.quality_dir / _GX_DIR


def data_docs_index_path(settings: Settings) -> Path:
    """Where the Data Docs index page lives (built by :func:`build_data_docs`)."""
    return gx_context_dir(settings) / "uncommitted" / "data_docs" / _SITE_NAME / "index.html"


def reports_dir(settings: Settings) -> Path:
    return settings.quality_dir / "reports"


def _context(settings: Settings) -> FileDataContext:
    return _open_context(settings.quality_dir.resolve())


@functools.lru_cache(maxsize=8)
def _open_context(quality_dir: Path) -> FileDataContext:
    """Open the file context under ``quality_dir``, scaffolding it on first use (cached)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    quality_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=quality_dir)

    changed = False
    if context.variables.analytics_enabled is not False:
        # Explicit False wins over the GX_ANALYTICS_ENABLED environment variable.
        context.variables.analytics_enabled = False
        changed = True
    progress = context.variables.progress_bars
    if not progress or progress.get("globally") is not False:
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        changed = True
    if changed:
        context.variables.save()

    sources = context.data_sources.all()
    if _DATASOURCE_NAME in sources:
        source = sources[_DATASOURCE_NAME]
    else:
        source = context.data_sources.add_pandas(_DATASOURCE_NAME)
    if _ASSET_NAME in source.get_asset_names():
        asset = source.get_asset(_ASSET_NAME)
    else:
        asset = source.add_dataframe_asset(_ASSET_NAME)
    if not any(b.name == _BATCH_DEFINITION_NAME for b in asset.batch_definitions):
        asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION_NAME)
    return context


def _frame_batch_definition(context: FileDataContext):
    source = context.data_sources.all()[_DATASOURCE_NAME]
    return source.get_asset(_ASSET_NAME).get_batch_definition(_BATCH_DEFINITION_NAME)


def _url_to_path(url: str | None) -> Path | None:
    if not url:
        return None
    return Path(unquote(urlparse(url).path))


# -- validation ------------------------------------------------------------------------------
# Per process: context root -> keys of stored validation results whose page is not rendered.
_pending_pages: dict[str, list] = {}


def _safe_name(text: str) -> str:
    """A file-name-safe form of a batch label or run name (``/`` becomes ``__``)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text.replace("/", "__")).strip("._") or "batch"


def validate_frame(
    df: pd.DataFrame,
    suite_name: str,
    *,
    batch: str,
    settings: Settings,
    run_name: str | None = None,
) -> QualityReport:
    """Validate one DataFrame against a committed suite and report in plain words.

    ``df`` must already carry the contract types (ordered_at datetime64, quantity int,
    unit_price float). ``batch`` names what was validated (e.g.
    ``landing/order_lines/2025-03-01/part-0.parquet``); ``run_name`` groups reports and Data
    Docs pages of one pipeline run (e.g. the Airflow run id), ``"adhoc"`` when not given.

    Stores the GX validation result, writes the Shopflow report JSON (replacing an earlier
    report of the same run, suite and batch) and returns it. The report's ``data_docs_path``
    is the page :func:`build_data_docs` renders for this validation. Does not raise on failed
    rules: pass the reports to :func:`raise_if_blocked`.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    spec = _load_suite_spec(settings, suite_name)
    context = _context(settings)
    suite = _synced_suite(context, spec)

    # Quarantine rules need every offending row's index (COMPLETE); other suites need only
    # counts and examples (SUMMARY). The full lists are dropped again before storing.
    wants_rows = any(
        (e.get("meta") or {}).get("severity") == QUARANTINE for e in spec["expectations"]
    )
    result_format = {
        "result_format": "COMPLETE" if wants_rows else "SUMMARY",
        "partial_unexpected_count": _PARTIAL_UNEXPECTED_COUNT,
    }
    id_columns = list(spec["meta"].get("id_columns") or [])
    if id_columns and not wants_rows:  # quarantine needs plain index labels
        result_format["unexpected_index_column_names"] = id_columns
    gx_batch = _frame_batch_definition(context).get_batch(batch_parameters={"dataframe": df})
    result = gx_batch.validate(suite, result_format=result_format)
    row_indexes = _pop_unexpected_indexes(result) if wants_rows else {}

    run_label = run_name or "adhoc"
    run_id = RunIdentifier(run_name=_safe_name(run_label), run_time=dt.datetime.now(dt.UTC))
    result.meta["run_id"] = run_id
    result.meta["shopflow_batch"] = batch
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run_id,
        batch_identifier=_safe_name(batch),
    )
    context.validation_results_store.store_validation_results(
        suite_validation_result=result, suite_validation_result_identifier=key
    )
    # The page is rendered later, with the others of this task, by build_data_docs().
    _pending_pages.setdefault(str(context.root_directory), []).append(key)
    urls = context.get_docs_sites_urls(
        resource_identifier=key, site_name=_SITE_NAME, only_if_exists=False
    )
    page = _url_to_path(urls[0]["site_url"]) if urls else None

    report = _report_from_result(
        result, spec, suite, batch=batch, data_docs_path=page, row_indexes=row_indexes
    )
    _write_report(report, settings, run_label)
    if report.success:
        logger.info(report.summary())
    else:
        logger.warning(report.summary())
    return report


def _pop_unexpected_indexes(result) -> dict[str, tuple]:
    """Expectation id -> index labels of its unexpected rows, removed from ``result``.

    A COMPLETE result holds every unexpected value and index; stored as is, a warning over
    100,000 guest lines would put megabytes into the validation store and the Data Docs page.
    """
    indexes = {}
    for item in result.results:
        outcome = item.result or {}
        found = outcome.pop("unexpected_index_list", None)
        outcome.pop("unexpected_list", None)
        outcome.pop("unexpected_index_query", None)
        if found and item.expectation_config is not None:
            indexes[item.expectation_config.id] = tuple(found)
    return indexes


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _report_from_result(
    result,
    spec: dict,
    suite: ExpectationSuite,
    *,
    batch: str,
    data_docs_path: Path | None,
    row_indexes: dict[str, tuple] | None = None,
) -> QualityReport:
    suite_severity = spec["meta"]["severity"]
    unit = spec["meta"].get("unit", "row")
    order = {expectation.id: number for number, expectation in enumerate(suite.expectations)}
    failures = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        meta = config.meta or {}
        failure = _failed_expectation(item, config, meta, meta.get("severity", suite_severity))
        failure = dataclasses.replace(
            failure, unit=unit, row_indexes=(row_indexes or {}).get(config.id, ())
        )
        failures.append((order.get(config.id, len(order)), failure))
    failures = [failure for _, failure in sorted(failures, key=lambda pair: pair[0])]
    return QualityReport(
        suite=spec["name"],
        batch=batch,
        success=bool(result.success),
        blocking_failures=[f for f in failures if f.severity == BLOCKING],
        warnings=[f for f in failures if f.severity == WARNING],
        evaluated=int(result.statistics["evaluated_expectations"]),
        data_docs_path=data_docs_path,
        quarantined=[f for f in failures if f.severity == QUARANTINE],
    )


def _failed_expectation(item, config, meta: dict, severity: str) -> FailedExpectation:
    # to_json_dict turns numpy scalars, timestamps and NaN into JSON values.
    details = item.to_json_dict()
    outcome = details.get("result") or {}
    kwargs = config.kwargs
    observed = None
    examples = list(outcome.get("partial_unexpected_list") or [])
    named = outcome.get("partial_unexpected_index_list") or []
    if outcome.get("unexpected_index_column_names") and all(isinstance(x, dict) for x in named):
        # Examples that name their row, identifying columns first.
        ids = outcome["unexpected_index_column_names"]
        examples = [
            {**{c: row.get(c) for c in ids}, **{k: v for k, v in row.items() if k not in ids}}
            for row in named
        ]
    count = outcome.get("unexpected_count")

    error = _exception_message(details.get("exception_info") or {})
    if error:
        count, examples, observed = None, [], f"could not be checked ({error})"
    elif count is None:
        missing = ((outcome.get("details") or {}).get("mismatched") or {}).get("missing")
        if missing:
            examples = list(missing)
            observed = f"missing {', '.join(str(c) for c in missing)}"
        elif "observed_value" in outcome:
            observed = f"observed {outcome['observed_value']}"
    return FailedExpectation(
        expectation=config.type,
        column=kwargs.get("column"),
        description=meta.get("description") or config.type,
        severity=severity,
        unexpected_count=None if count is None else int(count),
        unexpected_examples=examples[:_EXAMPLES_IN_MESSAGE],
        observed=observed,
        rule=meta.get("rule"),
    )


def _exception_message(info: dict) -> str | None:
    """The first error GX caught while checking a rule (its shape varies by failure point)."""
    if info.get("raised_exception"):
        message = info.get("exception_message")
    else:  # a metric failed: {metric id: {"raised_exception": ..., "exception_message": ...}}
        message = next(
            (
                v.get("exception_message")
                for v in info.values()
                if isinstance(v, dict) and v.get("raised_exception")
            ),
            None,
        )
    if not message:
        return None
    return re.sub(r"^Error:\s*", "", str(message)).strip()


def _format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):  # one row of a compound-column rule
        return "(" + ", ".join(f"{k}={_format_value(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):  # one row of a column-pair rule
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def _write_report(report: QualityReport, settings: Settings, run_label: str) -> Path:
    target_dir = reports_dir(settings) / _safe_name(run_label)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{report.suite}__{_safe_name(report.batch)}.json"
    payload = {"run_name": run_label, **report.to_json_dict()}
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, target)
    return target


def build_data_docs(settings: Settings) -> Path:
    """Render Data Docs: the pages of this process's validations, the suites, and the index.

    Call once per task, after its validations (and before :func:`raise_if_blocked`, so that
    the pages the error message points at exist). Returns the index page.
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    context = _context(settings)
    for spec in load_suite_specs(settings).values():
        _synced_suite(context, spec)
    root = str(context.root_directory)
    pages = list(_pending_pages.get(root, []))
    suite_keys = [ExpectationSuiteIdentifier(name=s.name) for s in context.suites.all()]
    # One SiteBuilder pass for everything: rendering pages one at a time costs 10x more
    # (GX re-lists the stores and recompiles its templates on every call).
    built = context.build_data_docs(
        site_names=[_SITE_NAME], resource_identifiers=(pages + suite_keys) or None, build_index=True
    )
    del _pending_pages.get(root, [])[: len(pages)]
    index = _url_to_path(built.get(_SITE_NAME))
    return index if index is not None else data_docs_index_path(settings)


def raise_if_blocked(reports: list[QualityReport]) -> None:
    """Raise :class:`QualityGateError` if any report has a blocking failure; warnings pass."""
    if any(report.blocked for report in reports):
        raise QualityGateError(reports)
