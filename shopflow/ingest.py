"""Ingest: landing partitions -> ``raw`` tables in the warehouse, behind the quality gate.

For business date D, every partition dated on or before D whose fingerprint (file names and
bytes) differs from the one recorded in ``raw.landing_manifest`` is read, cast to the landing
contract and validated. Only when no partition fails a blocking check are the partitions
written, in one transaction that replaces each partition's rows (delete + insert, never a
blind append) and records the new fingerprints. A failed gate therefore changes nothing.

The gate has three layers (docs/runbooks/quality_gate.md has the table of outcomes):

1. Reading (:func:`read_partitions`) blocks a file that cannot be read as the contract says:
   empty, not UTF-8, another delimiter, a cut-off line, missing columns, values of the wrong
   type. Extra columns are ignored and reported as a warning.
2. Suite ``landing_<entity>`` checks every row. Rows breaking a *quarantine* rule (missing
   keys, zero quantity, negative price, unknown currency, a timestamp outside the partition's
   date, a later copy of a line) go to ``quality.quarantine`` (file, line, rule, run date,
   the row as JSON); the rest of the partition is loaded.
3. Suite ``landing_partitions`` checks every partition: it blocks when more than 5% of its
   rows are quarantined (more than 1 row under 20 rows: a few bad lines among thousands are
   routine, a larger share means the export itself is broken and loading the rest would
   publish a skewed day), and when its row count is 10x or more, or 10% or less, of the
   trailing 28-day average (order lines; needs 7 partitions of history and 20 rows per
   partition on average, so a new shop's first week and a very small shop are not
   volume-checked). On-call accepts a real spike or drop by dropping an
   empty ``_volume_ok`` file into the partition folder and rerunning.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.landing import CONTRACT, REQUIRED_ENTITIES, Partition, list_partitions
from shopflow.warehouse import connect

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd

    from shopflow.quality import QualityReport
    from shopflow.settings import Settings

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
LINEAGE_COLUMNS = {
    "_partition_date": "DATE",
    "_source_file": "VARCHAR",
    "_source_line": "BIGINT",
    "_batch_id": "BIGINT",
}


# Quarantine: one row per (quarantined line, rule). Kept apart from raw so dbt never reads it.
QUALITY_SCHEMA = "quality"
QUARANTINE_TABLE = f"{QUALITY_SCHEMA}.quarantine"
QUARANTINE_COLUMNS = {
    "entity": "VARCHAR NOT NULL",
    "partition_date": "DATE NOT NULL",
    "source_file": "VARCHAR NOT NULL",
    "source_line": "BIGINT NOT NULL",
    "rule": "VARCHAR NOT NULL",
    "description": "VARCHAR NOT NULL",
    "row_json": "VARCHAR NOT NULL",
    "run_date": "DATE NOT NULL",
}
# The key that makes a row unique within a partition; later copies are quarantined.
KEY_COLUMNS = {
    "order_lines": ("order_id", "line_number"),
    "products": ("product_id",),
    "customers": ("customer_id",),
}
VOLUME_WINDOW_DAYS = 28
VOLUME_MIN_HISTORY = 7  # partitions in the window; fewer and volume is not checked
# Below this many rows per partition on average a shop is so small that one large order is a
# "10x spike" and a quiet day a "90% drop" (Poisson noise): volume is not checked.
VOLUME_MIN_AVERAGE_ROWS = 20
VOLUME_OK_MARKER = "_volume_ok"  # on-call's "this spike or drop is real" for one partition


class LandingFormatError(ValueError):
    """A landing file cannot be read as the contract says (columns, types, encoding)."""


@dataclass
class IngestResult:
    """What one ingest did: partitions loaded per entity and rows written."""

    run_date: dt.date
    batch_id: int | None = None
    partitions: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    reports: list[QualityReport] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "run_date": self.run_date.isoformat(),
            "batch_id": self.batch_id,
            "partitions_loaded": {k: len(v) for k, v in self.partitions.items()},
            "rows_loaded": self.rows,
            "rows_quarantined": self.quarantined,
            "partitions_unchanged": self.unchanged,
        }


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema, one table per landing entity, and the manifest (idempotent)."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    for entity, columns in CONTRACT.items():
        cols = {**columns, **LINEAGE_COLUMNS}
        ddl = ", ".join(f"{name} {dtype}" for name, dtype in cols.items())
        con.execute(f"create table if not exists {RAW_SCHEMA}.{entity} ({ddl})")
    con.execute(
        f"""
        create table if not exists {RAW_SCHEMA}.landing_manifest (
            entity varchar not null,
            partition_date date not null,
            fingerprint varchar not null,
            row_count bigint not null,
            batch_id bigint not null,
            loaded_for_run_date date not null,
            primary key (entity, partition_date)
        )
        """
    )
    con.execute(f"create schema if not exists {QUALITY_SCHEMA}")
    ddl = ", ".join(f"{name} {dtype}" for name, dtype in QUARANTINE_COLUMNS.items())
    con.execute(f"create table if not exists {QUARANTINE_TABLE} ({ddl}, batch_id BIGINT NOT NULL)")


def _relative(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.home))
    except ValueError:
        return str(path)


def _first_error_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _cast_select(columns: dict[str, str], source_columns: list[str]) -> str:
    parts = []
    for name, dtype in columns.items():
        value = f"nullif(trim(\"{name}\"::varchar), '')"
        parts.append(
            f"{value} as {name}"
            if dtype == "VARCHAR"
            else f"try_cast({value} as {dtype}) as {name}"
        )
    return ", ".join(parts + source_columns)


def _check_types(con, columns: dict[str, str], file_column: str, line_expr: str, line_word: str):
    """Raise naming file, column, line and value for the first values that do not cast."""
    for name, dtype in columns.items():
        if dtype == "VARCHAR":
            continue
        bad = con.execute(
            f"""
            select {file_column}, {line_expr}, "{name}"::varchar from src
            where nullif(trim("{name}"::varchar), '') is not null
              and try_cast(trim("{name}"::varchar) as {dtype}) is null
            limit 3
            """
        ).fetchall()
        if bad:
            examples = ", ".join(f"{line_word} {line}: {value!r}" for _, line, value in bad)
            raise LandingFormatError(
                f"{bad[0][0]}: column {name} must be {dtype}; bad values at {examples}"
            )


def _check_columns(label: str, present: list[str], entity: str, extra_columns: dict) -> None:
    """Raise naming the missing contract columns; record extra ones (ignored, warned about)."""
    columns = CONTRACT[entity]
    missing = [c for c in columns if c not in present]
    extra = [c for c in present if c not in columns]
    if missing:
        hint = f"; not in the contract: {', '.join(extra)} (renamed?)" if extra else ""
        raise LandingFormatError(
            f"{label}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(present) or 'none'}){hint}"
        )
    if extra:
        extra_columns[label] = extra


def _read_parquet_files(
    con, files: list[tuple[Path, str]], entity: str, extra_columns: dict
) -> pd.DataFrame:
    """All Parquet files of an entity in one scan, after a per-file schema check."""
    import duckdb
    import pyarrow.parquet as pq

    columns = CONTRACT[entity]
    for path, label in files:
        if path.stat().st_size == 0:
            raise LandingFormatError(f"{label}: the file is empty (0 bytes)")
        try:
            present = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise LandingFormatError(f"{label}: not a readable Parquet file: {exc}") from exc
        _check_columns(label, present, entity, extra_columns)
    labels = {str(path): label for path, label in files}
    con.register("labels", _labels_frame(labels))
    paths = ", ".join(f"'{path}'" for path, _ in files)
    select = ", ".join(f'"{c}"' for c in columns)
    con.execute(
        f"""
        create or replace temp view src as
        select {select}, labels.label as _source_file, file_row_number + 1 as _source_line
        from read_parquet([{paths}], filename = true, file_row_number = true,
                          union_by_name = true) as files
        join labels on labels.path = files.filename
        """
    )
    try:
        _check_types(con, columns, "_source_file", "_source_line", "row")
        return con.execute(
            f"select {_cast_select(columns, ['_source_file', '_source_line'])} from src"
        ).df()
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{files[0][1]} ...: cannot be read as {entity}: {_first_error_line(exc)}"
        ) from exc


def _labels_frame(labels: dict[str, str]):
    import pandas as pd

    return pd.DataFrame({"path": list(labels), "label": list(labels.values())})


# Delimiters a shop's export tool may use instead of the contract's comma.
_OTHER_DELIMITERS = {";": "';' (semicolon)", "\t": "tabs", "|": "'|' (pipe)"}


def _check_csv_text(path: Path, label: str, entity: str) -> None:
    """Catch what makes a CSV unreadable as a whole, with a message on-call can act on:
    an empty file, bytes that are not UTF-8, another delimiter, a line with too few or too
    many fields (typically the last one, cut off by an interrupted upload)."""
    import csv
    import io

    data = path.read_bytes()
    if not data:
        raise LandingFormatError(
            f"{label}: the file is empty (0 bytes); a CSV needs a header line and order lines"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LandingFormatError(
            f"{label}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} cannot be "
            "decoded (the landing contract expects UTF-8; re-export the file as UTF-8)"
        ) from None
    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    columns = list(CONTRACT[entity])
    if not all(c in [h.strip().strip('"') for h in header.split(",")] for c in columns):
        for delimiter, name in _OTHER_DELIMITERS.items():
            if all(c in [h.strip().strip('"') for h in header.split(delimiter)] for c in columns):
                raise LandingFormatError(
                    f"{label}: not comma-separated: the header line is separated by {name}; "
                    "the landing contract expects ',' between columns"
                )
        return  # the column check names what is missing
    reader = csv.reader(io.StringIO(text, newline=""))
    width = len(next(reader))
    for record in reader:
        if record and len(record) != width:
            line = reader.line_num
            if not text.endswith(("\n", "\r")) and text.count("\n") < line:
                raise LandingFormatError(
                    f"{label}: the last line (line {line}) is cut off: it has {len(record)} of "
                    f"{width} fields; the file looks truncated (an interrupted upload?): "
                    "re-send the whole file"
                )
            raise LandingFormatError(
                f"{label}: line {line} has {len(record)} fields, the header has {width}"
            )


def _read_csv_file(con, path: Path, label: str, entity: str, extra_columns: dict) -> pd.DataFrame:
    """One CSV file read as text, so a bad value is reported with its line, not a stack trace."""
    import duckdb

    _check_csv_text(path, label, entity)
    columns = CONTRACT[entity]
    source = (
        f"read_csv('{path}', header = true, all_varchar = true, delim = ',', quote = '\"', "
        "escape = '\"', strict_mode = true, null_padding = false)"
    )
    try:
        con.execute(
            f"create or replace temp view src as select *, '{label}' as _source_file, "
            f"row_number() over () + 1 as _source_line from {source}"
        )
        present = [r[0] for r in con.execute(f"describe select * from {source}").fetchall()]
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{label}: cannot be read as {entity} CSV: {_first_error_line(exc)}"
        ) from exc
    _check_columns(label, present, entity, extra_columns)
    try:
        _check_types(con, columns, "_source_file", "_source_line", "line")
        return con.execute(
            f"select {_cast_select(columns, ['_source_file', '_source_line'])} from src"
        ).df()
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{label}: cannot be read as {entity} CSV: {_first_error_line(exc)}"
        ) from exc


def read_partitions(
    partitions: list[Partition],
    entity: str,
    settings: Settings,
    extra_columns: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Every file of the given partitions of one entity, cast to the contract, with lineage
    columns ``_partition_date``, ``_source_file`` (relative to SHOPFLOW_HOME), ``_source_line``,
    in partition, file and line order (a stable order decides which copy of a duplicate is
    "later"). Raises :class:`LandingFormatError` naming the file for anything unreadable.
    Columns outside the contract are ignored; ``extra_columns`` (if given) collects them per
    file label."""
    import duckdb
    import pandas as pd

    by_file: dict[str, dt.date] = {}
    parquet, csv = [], []
    for partition in partitions:
        for file in partition.files:
            label = _relative(file, settings)
            by_file[label] = partition.partition_date
            (parquet if file.suffix.lower() == ".parquet" else csv).append((file, label))
    frames = []
    extra = {} if extra_columns is None else extra_columns
    con = duckdb.connect()
    try:
        con.execute("set threads = 2")
        if parquet:
            frames.append(_read_parquet_files(con, parquet, entity, extra))
        for file, label in csv:
            frames.append(_read_csv_file(con, file, label, entity, extra))
    finally:
        con.close()
    columns = [*CONTRACT[entity], "_source_file", "_source_line"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for name, dtype in CONTRACT[entity].items():
        if dtype.startswith("DECIMAL"):
            # decimals travel as floats in frames; the raw table stores DECIMAL again
            frame[name] = frame[name].astype("float64")
    frame.insert(0, "_partition_date", frame["_source_file"].map(by_file))
    return frame.sort_values(["_partition_date", "_source_file", "_source_line"]).reset_index(
        drop=True
    )


def read_partition(partition: Partition, settings: Settings) -> pd.DataFrame:
    """All files of one partition (see :func:`read_partitions`)."""
    return read_partitions([partition], partition.entity, settings)


def _manifest(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, dt.date], str]:
    rows = con.execute(
        f"select entity, partition_date, fingerprint from {RAW_SCHEMA}.landing_manifest"
    ).fetchall()
    return {(entity, day): fp for entity, day, fp in rows}


def changed_partitions(
    settings: Settings, run_date: dt.date, manifest: dict[tuple[str, dt.date], str]
) -> list[tuple[Partition, str]]:
    """Partitions up to ``run_date`` that are new or whose fingerprint changed."""
    changed = []
    for entity in CONTRACT:
        for partition in list_partitions(settings.landing_dir, entity, run_date):
            fingerprint = partition.fingerprint()
            if manifest.get((entity, partition.partition_date)) != fingerprint:
                changed.append((partition, fingerprint))
    return changed


def prepare_for_validation(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    """The contract columns plus the derived columns the landing suites check (same index).

    ``key_occurrence`` numbers the rows sharing a key within a partition in file and line order
    (1 = first); ``ordered_date`` / ``partition_date`` (order lines) are ISO dates, so a failed
    rule shows readable examples.
    """
    out = frame[list(CONTRACT[entity])].copy()
    if entity == "order_lines":
        out["ordered_date"] = frame["ordered_at"].dt.strftime("%Y-%m-%d")
        out["partition_date"] = frame["_partition_date"].map(lambda day: day.isoformat())
    keys = list(KEY_COLUMNS[entity])
    complete = frame[keys].notna().all(axis=1)
    occurrence = frame[complete].groupby(["_partition_date", *keys], sort=False).cumcount() + 1
    out["key_occurrence"] = occurrence.reindex(frame.index).astype("float64")
    return out


def _partition_label(entity: str, day: dt.date, files: list[str]) -> str:
    return f"landing/{entity}/{day} ({', '.join(sorted(files))})"


def validate_entity(
    frame: pd.DataFrame, entity: str, partitions: list[Partition], settings: Settings, run_name
) -> list[QualityReport]:
    """Validate an entity's new partitions in one pass with its row-level suite.

    Rows breaking a quarantine rule are listed in the report (not blocking). On a blocking
    failure each partition is validated on its own so the report names the partition (and
    file) that broke the rule.
    """
    from shopflow.quality import validate_frame

    suite = f"landing_{entity}"
    prepared = prepare_for_validation(frame, entity)
    days = sorted(p.partition_date for p in partitions)
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
    report = validate_frame(
        prepared, suite, batch=f"landing/{entity}/{span}", settings=settings, run_name=run_name
    )
    if not report.blocked or len(partitions) == 1:
        return [report]
    reports = []
    for day, part in frame.groupby("_partition_date", sort=True):
        files = list(part["_source_file"].unique())
        reports.append(
            validate_frame(
                prepared.loc[part.index],
                suite,
                batch=_partition_label(entity, day, files),
                settings=settings,
                run_name=run_name,
            )
        )
    return [r for r in reports if r.blocked] or [report]


def _trailing_average(history: dict[dt.date, int], day: dt.date) -> tuple[float | None, int]:
    """Mean rows per partition over the partitions dated in the 28 days before ``day``, and
    how many there were; None with fewer than VOLUME_MIN_HISTORY (a new shop's first week) or
    a mean under VOLUME_MIN_AVERAGE_ROWS (a very small shop)."""
    window = [
        rows
        for other, rows in history.items()
        if day - dt.timedelta(days=VOLUME_WINDOW_DAYS) <= other < day
    ]
    if len(window) < VOLUME_MIN_HISTORY or sum(window) < VOLUME_MIN_AVERAGE_ROWS * len(window):
        return None, len(window)
    return sum(window) / len(window), len(window)


def partition_summary(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    frame: pd.DataFrame,
    quarantined: set,
    partitions: list[Partition],
    extra_columns: dict[str, list[str]],
) -> pd.DataFrame:
    """One row per partition of the batch: what suite ``landing_partitions`` checks.

    Volume history is the row count of every partition already loaded (the manifest) plus the
    kept rows of this batch's earlier partitions, so a backfill of many days is checked day by
    day against the days before it.
    """
    import pandas as pd

    history = {
        day: int(rows)
        for day, rows in con.execute(
            f"select partition_date, row_count from {RAW_SCHEMA}.landing_manifest where entity = ?",
            [entity],
        ).fetchall()
    }
    is_quarantined = frame.index.isin(list(quarantined))
    received = frame.groupby("_partition_date").size()
    set_aside = frame[is_quarantined].groupby("_partition_date").size()
    records = []
    for partition in sorted(partitions, key=lambda p: p.partition_date):
        day = partition.partition_date
        rows = int(received.get(day, 0))
        bad = int(set_aside.get(day, 0))
        # from the partition, not the frame: a header-only file has no rows to name it
        labels = [f"landing/{entity}/{day}/{file.name}" for file in partition.files]
        extra = sorted({c for label in labels for c in extra_columns.get(label, [])})
        average, history_partitions = _trailing_average(history, day)
        accepted = (partition.path / VOLUME_OK_MARKER).exists()
        ratio = None
        if entity == "order_lines" and average is not None and not accepted:
            ratio = round(rows / average, 2)
        history[day] = rows - bad  # what this partition will hold once loaded
        records.append(
            {
                "entity": entity,
                "partition_date": day.isoformat(),
                "files": ", ".join(labels),
                "rows": rows,
                "quarantined_rows": bad,
                "quarantined_share": round(bad / rows, 4) if rows else 0.0,
                "history_partitions": history_partitions,
                "trailing_avg_rows": None if average is None else round(average, 1),
                "volume_ratio": ratio,
                "volume_accepted": accepted,
                "extra_columns": ", ".join(extra) or None,
            }
        )
    summary = pd.DataFrame.from_records(records)
    for column in ("trailing_avg_rows", "volume_ratio"):
        summary[column] = summary[column].astype("float64")
    return summary.astype({"extra_columns": "object"})


def validate_partitions(
    summary: pd.DataFrame, entity: str, settings: Settings, run_name: str
) -> list[QualityReport]:
    """Suite ``landing_partitions`` over the batch; on a blocking failure, once more per
    failing partition so that the report names it."""
    from shopflow.quality import validate_frame

    days = list(summary["partition_date"])
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    report = validate_frame(
        summary,
        "landing_partitions",
        batch=f"landing/{entity}/{span} partitions",
        settings=settings,
        run_name=run_name,
    )
    if not report.blocked or len(summary) == 1:
        if len(summary) == 1 and report.blocked:
            row = summary.iloc[0]
            report = validate_frame(
                summary,
                "landing_partitions",
                batch=f"landing/{entity}/{row['partition_date']} ({row['files']})",
                settings=settings,
                run_name=run_name,
            )
        return [report]
    reports = []
    for position in range(len(summary)):
        row = summary.iloc[[position]]
        single = validate_frame(
            row,
            "landing_partitions",
            batch=f"landing/{entity}/{row['partition_date'].iloc[0]} ({row['files'].iloc[0]})",
            settings=settings,
            run_name=run_name,
        )
        if single.blocked:
            reports.append(single)
    return reports or [report]


def quarantine_frame(
    frame: pd.DataFrame, entity: str, reports: list[QualityReport], run_date: dt.date
) -> pd.DataFrame:
    """One row per (quarantined line, rule it broke): file, line, rule, run date, the line as
    JSON. ``batch_id`` is filled in when the batch is written."""
    import pandas as pd

    records = []
    columns = list(CONTRACT[entity])
    for report in reports:
        for failure in report.quarantined:
            if not failure.row_indexes:
                continue
            rows = frame.loc[list(failure.row_indexes)]
            as_json = rows[columns].to_json(orient="records", lines=True, date_format="iso")
            for (_, row), line_json in zip(rows.iterrows(), as_json.splitlines(), strict=True):
                records.append(
                    {
                        "entity": entity,
                        "partition_date": row["_partition_date"],
                        "source_file": row["_source_file"],
                        "source_line": int(row["_source_line"]),
                        "rule": failure.rule,
                        "description": failure.description,
                        "row_json": line_json,
                        "run_date": run_date,
                    }
                )
    result = pd.DataFrame.from_records(records, columns=[*QUARANTINE_COLUMNS])
    return result.drop_duplicates(["source_file", "source_line", "rule"])


def ingest_landing(settings: Settings, run_date: dt.date) -> IngestResult:
    """Validate and load every new or changed landing partition up to ``run_date``.

    Lines that break a quarantine rule go to ``quality.quarantine`` and the rest of their
    partition is loaded. Raises :class:`LandingFormatError` or
    :class:`shopflow.quality.QualityGateError` before writing anything if a partition is
    unreadable, fails a blocking expectation, or has too large a share of quarantined lines.
    """
    from shopflow.quality import build_data_docs, raise_if_blocked

    result = IngestResult(run_date=run_date)
    run_name = f"nightly_{run_date.isoformat()}"
    with connect(settings) as con:
        ensure_raw_tables(con)
        manifest = _manifest(con)
        todo = changed_partitions(settings, run_date, manifest)
        total = sum(len(list_partitions(settings.landing_dir, e, run_date)) for e in CONTRACT)
        result.unchanged = total - len(todo)
        for entity in REQUIRED_ENTITIES:
            if not any(key[0] == entity for key in manifest) and not any(
                p.entity == entity for p, _ in todo
            ):
                raise LandingFormatError(
                    f"landing/{entity}: no partition dated on or before {run_date} "
                    f"under {settings.landing_dir / entity}; nothing to run on"
                )
        if not todo:
            log.info("no new or changed landing partitions up to %s", run_date)
            return result

        loaded = []
        for entity in CONTRACT:
            partitions = [p for p, _ in todo if p.entity == entity]
            if not partitions:
                continue
            extra_columns: dict[str, list[str]] = {}
            frame = read_partitions(partitions, entity, settings, extra_columns)
            row_reports = validate_entity(frame, entity, partitions, settings, run_name)
            quarantined = set().union(*(r.quarantined_indexes() for r in row_reports))
            summary = partition_summary(con, entity, frame, quarantined, partitions, extra_columns)
            result.reports.extend(row_reports)
            result.reports.extend(validate_partitions(summary, entity, settings, run_name))
            _log_partitions(summary)
            fingerprints = {p.partition_date: fp for p, fp in todo if p.entity == entity}
            kept = frame.drop(index=list(quarantined))
            loaded.append(
                (entity, kept, fingerprints, quarantine_frame(frame, entity, row_reports, run_date))
            )
        build_data_docs(settings)
        raise_if_blocked(result.reports)
        for report in result.reports:
            for warning in report.warnings:
                log.warning("%s: %s", report.batch, warning.message())

        batch_id = con.execute(
            f"select coalesce(max(batch_id), 0) + 1 from {RAW_SCHEMA}.landing_manifest"
        ).fetchone()[0]
        result.batch_id = batch_id
        con.execute("begin transaction")
        try:
            for entity, kept, fingerprints, quarantine in loaded:
                _replace_partitions(con, entity, kept, fingerprints, batch_id, run_date)
                _replace_quarantine(con, entity, quarantine, fingerprints, batch_id)
                result.partitions[entity] = sorted(d.isoformat() for d in fingerprints)
                result.rows[entity] = len(kept)
                result.quarantined[entity] = int(quarantine["source_line"].size)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    log.info("ingested %s", result.as_dict())
    return result


def _log_partitions(summary: pd.DataFrame) -> None:
    """One log line per partition that quarantined rows or has an unusual volume."""
    for row in summary.itertuples(index=False):
        ratio = row.volume_ratio
        unusual = ratio == ratio and not 0.2 <= ratio <= 5  # NaN != NaN: not checked
        if row.quarantined_rows or unusual:
            volume = (
                "volume not checked"
                if ratio != ratio
                else f"trailing 28-day average {row.trailing_avg_rows} rows (ratio {ratio})"
            )
            log.warning(
                "landing/%s/%s: rows received %d, quarantined %d (%.1f%%), %s",
                row.entity,
                row.partition_date,
                row.rows,
                row.quarantined_rows,
                100 * row.quarantined_share,
                volume,
            )


def _replace_partitions(con, entity, frame, fingerprints, batch_id, run_date) -> None:
    """Delete the partitions' old rows and insert the new ones (caller holds a transaction)."""
    import pandas as pd

    days = pd.DataFrame({"partition_date": sorted(fingerprints)})
    con.register("replaced_days", days)
    con.execute(
        f"delete from {RAW_SCHEMA}.{entity} "
        "where _partition_date in (select partition_date from replaced_days)"
    )
    columns = [*CONTRACT[entity], *LINEAGE_COLUMNS]
    con.register("incoming", frame.assign(_batch_id=batch_id))
    con.execute(
        f"insert into {RAW_SCHEMA}.{entity} ({', '.join(columns)}) "
        f"select {', '.join(columns)} from incoming"
    )
    counts = frame.groupby("_partition_date").size()
    manifest = pd.DataFrame(
        {
            "entity": entity,
            "partition_date": list(fingerprints),
            "fingerprint": list(fingerprints.values()),
            "row_count": [int(counts.get(d, 0)) for d in fingerprints],
            "batch_id": batch_id,
            "loaded_for_run_date": run_date,
        }
    )
    con.register("manifest_rows", manifest)
    con.execute(f"insert or replace into {RAW_SCHEMA}.landing_manifest select * from manifest_rows")
    for name in ("replaced_days", "incoming", "manifest_rows"):
        con.unregister(name)


def _replace_quarantine(con, entity, quarantine, fingerprints, batch_id) -> None:
    """Replace the quarantined lines of the given partitions (caller holds a transaction): a
    rerun of a partition replaces its quarantine rows, it never adds to them."""
    import pandas as pd

    con.register("replaced_days", pd.DataFrame({"partition_date": sorted(fingerprints)}))
    con.execute(
        f"delete from {QUARANTINE_TABLE} where entity = ? "
        "and partition_date in (select partition_date from replaced_days)",
        [entity],
    )
    con.unregister("replaced_days")
    if quarantine.empty:
        return
    con.register("quarantined", quarantine.assign(batch_id=batch_id))
    columns = ", ".join([*QUARANTINE_COLUMNS, "batch_id"])
    con.execute(f"insert into {QUARANTINE_TABLE} ({columns}) select {columns} from quarantined")
    con.unregister("quarantined")
