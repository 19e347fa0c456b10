"""What a validation found, in plain words: failed rules, per-batch reports, the gate's error.

No GX here: the types are built from GX results by shopflow.quality.validation, and read by
ingest, the marts and predictions gates and the tests. A report is also written as JSON to
``$SHOPFLOW_HOME/quality/reports/<run_name>/<suite>__<batch>.json`` (replaced on rerun).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

# Messages show the first 5 examples of a broken rule (GX keeps more for Data Docs).
EXAMPLES_IN_MESSAGE = 5


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
    element_count: int | None = None  # rows of the validated frame: the share's denominator
    partitions: int | None = None  # landing partitions the broken rows are in (ingest)
    setting: str | None = None  # the configuration key that changes the rule (meta.setting)

    def message(self) -> str:
        """One line in plain words, e.g. ``quantity is never zero: 3 rows break it (e.g. 0)``."""
        if self.unexpected_count is not None:
            count = self.unexpected_count
            unit = self.unit if count == 1 else _plural(self.unit)
            rows = f"{count} {unit} {'breaks' if count == 1 else 'break'} it"
            # Examples of a "never missing" rule are all nulls: they add nothing.
            examples = self.unexpected_examples[:EXAMPLES_IN_MESSAGE]
            if examples and self.expectation != "expect_column_values_to_not_be_null":
                rows += f" (e.g. {', '.join(format_value(v) for v in examples)})"
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
        """The report as JSON values (row indexes left out: the quarantine table has them)."""
        data = asdict(self)
        for key in ("blocking_failures", "warnings", "quarantined"):
            for failure in data[key]:
                failure.pop("row_indexes", None)
        data["data_docs_path"] = str(self.data_docs_path) if self.data_docs_path else None
        data["blocked"] = self.blocked
        return data


# Rules of the partitions suite that block on the share of quarantined rows: their cause is
# the row-level rules that set those rows aside.
_QUARANTINE_SHARE_COLUMNS = ("quarantined_share", "quarantined_rows")


@dataclass
class _Finding:
    """One rule broken for one reason, counted once over every batch that broke it."""

    failure: FailedExpectation
    count: int = 0
    total: int = 0
    partitions: int = 0
    examples: list = field(default_factory=list)

    def add(self, failure: FailedExpectation) -> None:
        self.count += failure.unexpected_count or 0
        self.total += failure.element_count or 0
        self.partitions += failure.partitions or 0
        for example in failure.unexpected_examples:
            if example not in self.examples and len(self.examples) < 3:
                self.examples.append(example)

    def line(self, label: str) -> str:
        failure = self.failure
        if failure.unexpected_count is None:
            return f"{label}: {failure.message()}"
        unit = failure.unit if self.count == 1 else _plural(failure.unit)
        text = f"{label}: {failure.description}"
        if failure.rule:
            text += f" (rule {failure.rule})"
        text += f": {self.count:,}"
        if self.total:
            text += f" of {self.total:,} {unit} ({100 * self.count / self.total:.1f} %)"
        else:
            text += f" {unit}"
        if self.partitions:
            text += f" in {self.partitions:,} partition{'s' if self.partitions != 1 else ''}"
        if self.examples:
            text += f", e.g. {', '.join(format_value(v) for v in self.examples)}"
        return text


def _findings(failures) -> list[_Finding]:
    """Failures grouped by rule (description), largest count first."""
    grouped: dict[str, _Finding] = {}
    for failure in failures:
        grouped.setdefault(failure.description, _Finding(failure)).add(failure)
    return sorted(grouped.values(), key=lambda f: -f.count)


def root_cause(reports: list[QualityReport]) -> list[str]:
    """The first lines of a failed gate: the cause counted once (rule, rows and partitions
    with a real percentage, example values), then the setting that changes the rule.

    A partition blocked for its share of quarantined rows is blocked because of the row-level
    rules that set the rows aside: those are the cause, largest first.
    """
    blocking = [f for r in reports if r.blocked for f in r.blocking_failures]
    if not blocking:
        return []
    by_share = [f for f in blocking if f.column in _QUARANTINE_SHARE_COLUMNS]
    row_level = _findings(f for r in reports for f in r.quarantined)
    causes = row_level if by_share and row_level else _findings(blocking)
    lines = [causes[0].line("Cause")]
    if causes is row_level:
        share = _findings(by_share)[0]
        lines.append(
            f"  so {share.count:,} partition{'s' if share.count != 1 else ''} broke the "
            f"blocking rule: {share.failure.description}"
        )
    lines += [finding.line("Also") for finding in causes[1:3]]
    settings = [f.failure.setting for f in causes[:3] if f.failure.setting]
    if causes is row_level:
        settings += [f.setting for f in by_share[:1] if f.setting]
    for key in dict.fromkeys(settings):
        lines.append(
            f"  Setting: {key} in $SHOPFLOW_HOME/shopflow.toml changes this rule "
            "(`shopflow config show` prints its value and file)"
        )
    return lines


class QualityGateError(Exception):
    """Raised by :func:`raise_if_blocked`; ``reports`` holds every report it was given.

    The message starts with the root cause (:func:`root_cause`), then lists each blocked
    batch and the row-level problems."""

    def __init__(self, reports: list[QualityReport], home: Path | None = None):
        self.reports = list(reports)
        blocked = [r for r in self.reports if r.blocked]
        noun = "batch" if len(blocked) == 1 else "batches"
        lines = [f"Data quality gate stopped the run: {len(blocked)} {noun} broke blocking rules."]
        cause = root_cause(self.reports)
        if home is not None:
            cause = [line.replace("$SHOPFLOW_HOME", str(home)) for line in cause]
        lines += cause
        lines.append("Details:")
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
        """The reports with a blocking failure."""
        return [r for r in self.reports if r.blocked]


def raise_if_blocked(reports: list[QualityReport], home: Path | None = None) -> None:
    """Raise :class:`QualityGateError` if any report has a blocking failure; warnings pass.
    ``home`` (SHOPFLOW_HOME) makes the message's paths real paths."""
    if any(report.blocked for report in reports):
        raise QualityGateError(reports, home)


def reports_dir(settings: Settings) -> Path:
    """Where the JSON reports go, one folder per run name."""
    return settings.quality_dir / "reports"


def safe_name(text: str) -> str:
    """A file-name-safe form of a batch label or run name (``/`` becomes ``__``)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text.replace("/", "__")).strip("._") or "batch"


def write_report(report: QualityReport, settings: Settings, run_label: str) -> Path:
    """Write (or replace) the report's JSON for ``run_label``; returns the file."""
    target_dir = reports_dir(settings) / safe_name(run_label)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{report.suite}__{safe_name(report.batch)}.json"
    payload = {"run_name": run_label, **report.to_json_dict()}
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, target)
    return target


def format_value(value: Any) -> str:
    """One example value as a message shows it (strings quoted, rows in parentheses)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):  # one row of a compound-column rule
        return "(" + ", ".join(f"{k}={format_value(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):  # one row of a column-pair rule
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
