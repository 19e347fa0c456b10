"""Ingest: landing partitions -> ``raw`` tables in the warehouse, behind the quality gate.

For business date D, every partition dated on or before D whose fingerprint (file names and
bytes) differs from the one recorded in ``raw.landing_manifest`` is read, cast to the landing
contract and validated. Only when no partition fails a blocking check are the partitions
written, in one transaction that replaces each partition's rows (delete + insert, never a
blind append) and records the new fingerprints. A failed gate therefore changes nothing.

Memory is bounded by a group of partitions, not by the history: an entity's partitions are
read, validated and prepared in date order, in consecutive groups of about INGEST_BATCH_ROWS
rows (counted from Parquet footers and CSV line breaks before reading; a larger partition is
a group of its own). The kept and quarantined rows of each group are staged in TEMP tables of
the warehouse connection (DuckDB's memory is capped at INGEST_DUCKDB_MEMORY_LIMIT meanwhile,
so they spill to ``settings.tmp_dir``) and the group's frames are dropped. The transaction
at the end copies the staged rows; TEMP tables vanish with the connection, so nothing staged
is ever visible to another reader. Volume checks see the groups before theirs exactly as one
batch would (the history is carried from group to group); the row-level suite reports once
per group (its batch label names the group's date span).

An unchanged partition is recognised without reading its bytes: the manifest also records
the files' stat signature (:meth:`Partition.stat_signature`) taken when they were
fingerprinted, and only partitions whose signature differs are fingerprinted again.

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

import contextlib
import datetime as dt
import logging
import re
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

# Rows per group read, validated and staged at once: about 0.4 GB of frames and GX work at
# the peak for order lines. The real Online Retail II year (525,461 lines) is one group.
INGEST_BATCH_ROWS = 1_000_000
# DuckDB's memory during ingest (lower than settings.duckdb_memory_limit if that is higher):
# staged rows beyond it (about 150 bytes per order line) spill to the temp directory instead
# of growing with the history.
INGEST_DUCKDB_MEMORY_LIMIT = "256MB"
# Staged rows (TEMP tables) carry the lineage columns except the batch id, given when they
# are written.
STAGED_LINEAGE_COLUMNS = [c for c in LINEAGE_COLUMNS if c != "_batch_id"]
STAGED_QUARANTINE = "staged_quarantine"
# Results are converted to pandas in chunks of this many vectors (2,048 rows each): one
# conversion of a whole result holds DuckDB's copy and pandas' copy at once.
_FETCH_VECTORS = 50


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
            file_stats varchar,
            primary key (entity, partition_date)
        )
        """
    )
    columns = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = 'landing_manifest'",
            [RAW_SCHEMA],
        ).fetchall()
    }
    if "file_stats" not in columns:  # a warehouse from before the stat signature
        con.execute(f"alter table {RAW_SCHEMA}.landing_manifest add column file_stats varchar")
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
    typed = {name: dtype for name, dtype in columns.items() if dtype != "VARCHAR"}

    def uncastable(name: str, dtype: str) -> str:
        value = f'trim("{name}"::varchar)'
        return f"(nullif({value}, '') is not null and try_cast({value} as {dtype}) is null)"

    if not typed:
        return
    # One scan finds the columns with bad values; only those are scanned again for examples.
    checks = ", ".join(f"bool_or({uncastable(name, dtype)})" for name, dtype in typed.items())
    flags = con.execute(f"select {checks} from src").fetchone()
    for (name, dtype), flagged in zip(typed.items(), flags, strict=True):
        if not flagged:
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
    # The label is looked up by position, not joined: without a join the scan keeps file and
    # row order, so read_partitions need not sort (and copy) the frame.
    con.execute("set variable landing_paths = ?", [[str(path) for path, _ in files]])
    con.execute("set variable landing_labels = ?", [[label for _, label in files]])
    paths = ", ".join(f"'{path}'" for path, _ in files)
    select = ", ".join(f'"{c}"' for c in columns)
    con.execute(
        f"""
        create or replace temp view src as
        select {select},
            getvariable('landing_labels')[
                list_position(getvariable('landing_paths'), files.filename)
            ] as _source_file,
            file_row_number + 1 as _source_line
        from read_parquet([{paths}], filename = true, file_row_number = true,
                          union_by_name = true) as files
        """
    )
    try:
        _check_types(con, columns, "_source_file", "_source_line", "row")
        return _fetch_frame(
            con, f"select {_cast_select(columns, ['_source_file', '_source_line'])} from src"
        )
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{files[0][1]} ...: cannot be read as {entity}: {_first_error_line(exc)}"
        ) from exc


def _fetch_frame(con, sql: str) -> pd.DataFrame:
    """The result of ``sql`` as one DataFrame with the dtypes of ``.df()``, converted chunk by
    chunk (a whole-result conversion peaks at about 0.8 KB per order line)."""
    import pandas as pd

    result = con.execute(sql)
    chunks = [result.fetch_df_chunk(_FETCH_VECTORS)]
    while len(chunks[-1]):
        chunks.append(result.fetch_df_chunk(_FETCH_VECTORS))
    if len(chunks) == 1:
        return chunks[0]
    chunks.pop()  # the empty chunk that ends the result
    if len(chunks) == 1:
        return chunks[0]
    # A chunk whose strings are all missing comes back as object; the whole result would be
    # str. (Integers with missing values come back as Int32 and concat keeps that.)
    for column in chunks[0].columns:
        dtypes = {chunk[column].dtype for chunk in chunks}
        string = next((d for d in dtypes if isinstance(d, pd.StringDtype)), None)
        if string is not None and len(dtypes) > 1:
            for chunk in chunks:
                if chunk[column].dtype == object:
                    chunk[column] = chunk[column].astype(string)
    return pd.concat(chunks, ignore_index=True)


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
        return _fetch_frame(
            con, f"select {_cast_select(columns, ['_source_file', '_source_line'])} from src"
        )
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
    order = ["_partition_date", "_source_file", "_source_line"]
    # Usually in order already (one Parquet scan in file order): then sorting would only copy.
    if not pd.MultiIndex.from_frame(frame[order]).is_monotonic_increasing:
        frame = frame.sort_values(order)
    return frame.reset_index(drop=True)


def read_partition(partition: Partition, settings: Settings) -> pd.DataFrame:
    """All files of one partition (see :func:`read_partitions`)."""
    return read_partitions([partition], partition.entity, settings)


def _manifest(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, dt.date], str]:
    rows = con.execute(
        f"select entity, partition_date, fingerprint from {RAW_SCHEMA}.landing_manifest"
    ).fetchall()
    return {(entity, day): fp for entity, day, fp in rows}


def _manifest_file_stats(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, dt.date], str]:
    rows = con.execute(
        f"select entity, partition_date, file_stats from {RAW_SCHEMA}.landing_manifest "
        "where file_stats is not null"
    ).fetchall()
    return {(entity, day): stats for entity, day, stats in rows}


@dataclass
class LandingScan:
    """The partitions up to a run date, compared with the manifest."""

    # new or changed: (partition, fingerprint, stat signature or None)
    changed: list[tuple[Partition, str, str | None]] = field(default_factory=list)
    # unchanged bytes whose recorded stat signature is missing or stale (copied, touched)
    restated: dict[tuple[str, dt.date], str] = field(default_factory=dict)
    total: int = 0


def scan_landing(
    settings: Settings,
    run_date: dt.date,
    manifest: dict[tuple[str, dt.date], str],
    file_stats: dict[tuple[str, dt.date], str] | None = None,
) -> LandingScan:
    """Compare every partition up to ``run_date`` with the manifest's fingerprints.

    A partition whose stat signature equals the one recorded with its fingerprint
    (``file_stats``) is unchanged without reading its bytes; every other one is fingerprinted.
    """
    scan = LandingScan()
    file_stats = file_stats or {}
    for entity in CONTRACT:
        for partition in list_partitions(settings.landing_dir, entity, run_date):
            scan.total += 1
            key = (entity, partition.partition_date)
            # taken before the bytes are read: a write after it shows in the next signature
            signature = partition.stat_signature()
            if signature is not None and key in manifest and file_stats.get(key) == signature:
                continue
            fingerprint = partition.fingerprint()
            if manifest.get(key) != fingerprint:
                scan.changed.append((partition, fingerprint, signature))
            elif signature is not None:
                scan.restated[key] = signature
    return scan


def changed_partitions(
    settings: Settings,
    run_date: dt.date,
    manifest: dict[tuple[str, dt.date], str],
    file_stats: dict[tuple[str, dt.date], str] | None = None,
) -> list[tuple[Partition, str]]:
    """Partitions up to ``run_date`` that are new or whose fingerprint changed (see
    :func:`scan_landing`; without ``file_stats`` every partition is fingerprinted)."""
    scan = scan_landing(settings, run_date, manifest, file_stats)
    return [(partition, fingerprint) for partition, fingerprint, _ in scan.changed]


def prepare_for_validation(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    """The contract columns plus the derived columns the landing suites check (same index).

    ``key_occurrence`` numbers the rows sharing a key within a partition in file and line order
    (1 = first); ``ordered_date`` / ``partition_date`` (order lines) are ISO dates, so a failed
    rule shows readable examples.
    """
    out = frame[list(CONTRACT[entity])]  # copy-on-write: adding columns leaves frame as is
    if entity == "order_lines":
        out["ordered_date"] = frame["ordered_at"].dt.strftime("%Y-%m-%d")
        days = {day: day.isoformat() for day in frame["_partition_date"].unique()}
        out["partition_date"] = frame["_partition_date"].map(days.__getitem__)
    keys = list(KEY_COLUMNS[entity])
    complete = frame[keys].notna().all(axis=1)
    occurrence = frame[complete].groupby(["_partition_date", *keys], sort=False).cumcount() + 1
    out["key_occurrence"] = occurrence.reindex(frame.index).astype("float64")
    return out


def _partition_label(entity: str, day: dt.date, files: list[str]) -> str:
    return f"landing/{entity}/{day} ({', '.join(sorted(files))})"


def validate_entity(
    frame: pd.DataFrame,
    entity: str,
    partitions: list[Partition],
    settings: Settings,
    run_name,
    *,
    name_partitions: bool | None = None,
) -> list[QualityReport]:
    """Validate an entity's new partitions in one pass with its row-level suite.

    Rows breaking a quarantine rule are listed in the report (not blocking). On a blocking
    failure each partition is validated on its own so the report names the partition (and
    file) that broke the rule; ``name_partitions`` (default: more than one partition) says
    whether to, so that a group of a larger batch names its partitions as the batch would.
    """
    from shopflow.quality import validate_frame

    suite = f"landing_{entity}"
    prepared = prepare_for_validation(frame, entity)
    days = sorted(p.partition_date for p in partitions)
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
    report = validate_frame(
        prepared, suite, batch=f"landing/{entity}/{span}", settings=settings, run_name=run_name
    )
    if name_partitions is None:
        name_partitions = len(partitions) > 1
    if not report.blocked or not name_partitions:
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


def volume_history(con: duckdb.DuckDBPyConnection, entity: str) -> dict[dt.date, int]:
    """Rows per partition already loaded (the manifest), the start of the volume history."""
    return {
        day: int(rows)
        for day, rows in con.execute(
            f"select partition_date, row_count from {RAW_SCHEMA}.landing_manifest where entity = ?",
            [entity],
        ).fetchall()
    }


def partition_summary(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    frame: pd.DataFrame,
    quarantined: set,
    partitions: list[Partition],
    extra_columns: dict[str, list[str]],
    history: dict[dt.date, int] | None = None,
) -> pd.DataFrame:
    """One row per partition of the batch: what suite ``landing_partitions`` checks.

    Volume history is the row count of every partition already loaded (the manifest) plus the
    kept rows of this batch's earlier partitions, so a backfill of many days is checked day by
    day against the days before it. A batch validated in groups passes the same ``history``
    (from :func:`volume_history`) to each group in date order; it is updated in place with
    the group's partitions.
    """
    import pandas as pd

    if history is None:
        history = volume_history(con, entity)
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


def estimate_rows(partition: Partition) -> int:
    """Rows of a partition without reading its data: the row count in each Parquet file's
    footer, the line breaks of each CSV file (its header counts too). A file whose footer
    cannot be read counts 0: reading it reports what is wrong."""
    import pyarrow.parquet as pq

    rows = 0
    for file in partition.files:
        if file.suffix.lower() == ".parquet":
            with contextlib.suppress(Exception):  # pyarrow raises several types
                rows += pq.read_metadata(file).num_rows
        else:
            with file.open("rb") as handle:
                rows += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return rows


def partition_groups(
    partitions: list[Partition], max_rows: int | None = None
) -> list[list[Partition]]:
    """Consecutive groups of ``partitions`` in date order, each of at most ``max_rows``
    (default INGEST_BATCH_ROWS) estimated rows; a larger partition is a group of its own."""
    limit = INGEST_BATCH_ROWS if max_rows is None else max_rows
    groups: list[list[Partition]] = []
    rows = 0
    for partition in sorted(partitions, key=lambda p: p.partition_date):
        estimate = estimate_rows(partition)
        if not groups or rows + estimate > limit:
            groups.append([])
            rows = 0
        groups[-1].append(partition)
        rows += estimate
    return groups


@dataclass
class _EntityOutcome:
    """One entity's validated batch: its reports and, if nothing blocked, what was staged."""

    reports: list[QualityReport]
    rows: dict[dt.date, int]  # kept rows per partition
    quarantined: int  # quarantine rows (line, rule)
    blocked: bool


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
    # One connection from the manifest read to the commit: it holds the warehouse's file
    # lock (shopflow.warehouse.connect), so no other writer runs in between, and the TEMP
    # tables staging the rows are its own.
    with connect(settings) as con:
        ensure_raw_tables(con)
        manifest = _manifest(con)
        scan = scan_landing(settings, run_date, manifest, _manifest_file_stats(con))
        todo = scan.changed
        result.unchanged = scan.total - len(todo)
        for entity in REQUIRED_ENTITIES:
            if not any(key[0] == entity for key in manifest) and not any(
                p.entity == entity for p, _, _ in todo
            ):
                raise LandingFormatError(
                    f"landing/{entity}: no partition dated on or before {run_date} "
                    f"under {settings.landing_dir / entity}; nothing to run on"
                )
        if not todo:
            log.info("no new or changed landing partitions up to %s", run_date)
            return result

        _cap_memory(con, settings)
        _create_staging(con)
        loaded = []
        passing = True
        for entity in CONTRACT:
            changed = [(p, fp, stats) for p, fp, stats in todo if p.entity == entity]
            if not changed:
                continue
            outcome = _validate_entity_in_groups(
                con,
                settings,
                entity,
                [p for p, _, _ in changed],
                run_date,
                run_name,
                stage=passing,
            )
            result.reports.extend(outcome.reports)
            passing = passing and not outcome.blocked
            loaded.append((entity, changed, outcome))
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
            for entity, changed, outcome in loaded:
                days = sorted(p.partition_date for p, _, _ in changed)
                _replace_partitions(con, entity, changed, outcome.rows, batch_id, run_date)
                _replace_quarantine(con, entity, days, batch_id)
                result.partitions[entity] = [day.isoformat() for day in days]
                result.rows[entity] = sum(outcome.rows.values())
                result.quarantined[entity] = outcome.quarantined
            _record_file_stats(con, scan.restated)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    log.info("ingested %s", result.as_dict())
    return result


def _validate_entity_in_groups(
    con, settings, entity, partitions, run_date, run_name, *, stage: bool
) -> _EntityOutcome:
    """Read, validate and prepare one entity's partitions group by group (date order).

    While nothing has blocked (and ``stage``), each group's kept and quarantined rows go to
    the entity's TEMP tables; after a block, later groups are still validated (their reports
    belong in the error) but not staged, since nothing will be written.
    """
    staged_columns = [*CONTRACT[entity], *STAGED_LINEAGE_COLUMNS]
    extra_columns: dict[str, list[str]] = {}
    history = volume_history(con, entity)
    row_reports: list[QualityReport] = []
    partition_reports: list[QualityReport] = []
    rows = {p.partition_date: 0 for p in partitions}
    quarantined = 0
    blocked = False
    for group in partition_groups(partitions):
        frame = read_partitions(group, entity, settings, extra_columns)
        reports = validate_entity(
            frame, entity, group, settings, run_name, name_partitions=len(partitions) > 1
        )
        bad = set().union(*(r.quarantined_indexes() for r in reports))
        summary = partition_summary(con, entity, frame, bad, group, extra_columns, history)
        checks = validate_partitions(summary, entity, settings, run_name)
        _log_partitions(summary)
        row_reports.extend(reports)
        partition_reports.extend(checks)
        blocked = blocked or any(r.blocked for r in (*reports, *checks))
        if stage and not blocked:
            kept = frame.drop(index=list(bad)) if bad else frame
            _stage_rows(con, _staged_table(entity), kept, staged_columns)
            for day, count in kept.groupby("_partition_date").size().items():
                rows[day] = int(count)
            del kept
            quarantine = quarantine_frame(frame, entity, reports, run_date)
            if not quarantine.empty:
                _stage_rows(con, STAGED_QUARANTINE, quarantine, list(QUARANTINE_COLUMNS))
            quarantined += len(quarantine)
        del frame  # before the next group is read
        _release_freed_memory()
    # Row-level reports first, then the partition checks, as for a batch read at once.
    return _EntityOutcome(row_reports + partition_reports, rows, quarantined, blocked)


def _release_freed_memory() -> None:
    """Hand the buffers of dropped frames back to the OS: Arrow's allocator (pandas strings)
    keeps freed memory for reuse, which would otherwise add up over the groups."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _staged_table(entity: str) -> str:
    return f"staged_{entity}"


def _create_staging(con) -> None:
    """TEMP tables for the rows of the groups that passed, with the raw tables' types: private
    to this connection, gone when it closes, spilled to the temp directory when DuckDB's
    memory limit is reached."""
    for entity, columns in CONTRACT.items():
        lineage = {name: LINEAGE_COLUMNS[name] for name in STAGED_LINEAGE_COLUMNS}
        ddl = ", ".join(f"{name} {dtype}" for name, dtype in {**columns, **lineage}.items())
        con.execute(f"create or replace temp table {_staged_table(entity)} ({ddl})")
    ddl = ", ".join(f"{name} {dtype}" for name, dtype in QUARANTINE_COLUMNS.items())
    con.execute(f"create or replace temp table {STAGED_QUARANTINE} ({ddl})")


def _stage_rows(con, table: str, frame: pd.DataFrame, columns: list[str]) -> None:
    con.register("group_rows", frame)
    try:
        names = ", ".join(columns)
        con.execute(f"insert into {table} ({names}) select {names} from group_rows")
    finally:
        con.unregister("group_rows")


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def _size_bytes(text: str) -> int | None:
    """``"4GB"`` -> 4_000_000_000 (DuckDB's units); None if not of that form."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _cap_memory(con, settings: Settings) -> None:
    """Lower DuckDB's memory limit to INGEST_DUCKDB_MEMORY_LIMIT for this connection unless
    the configured one is already lower, so that staged rows spill instead of piling up."""
    configured = _size_bytes(settings.duckdb_memory_limit)
    if configured is None or configured > _size_bytes(INGEST_DUCKDB_MEMORY_LIMIT):
        con.execute(f"set memory_limit = '{INGEST_DUCKDB_MEMORY_LIMIT}'")


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


def _days_frame(days):
    import pandas as pd

    return pd.DataFrame({"partition_date": sorted(days)})


def _replace_partitions(con, entity, changed, rows, batch_id, run_date) -> None:
    """Delete the partitions' old rows, insert the staged ones and record the partitions in
    the manifest (caller holds a transaction). ``changed``: (partition, fingerprint, stat
    signature); ``rows``: kept rows per partition date."""
    import pandas as pd

    con.register("replaced_days", _days_frame(p.partition_date for p, _, _ in changed))
    con.execute(
        f"delete from {RAW_SCHEMA}.{entity} "
        "where _partition_date in (select partition_date from replaced_days)"
    )
    staged = ", ".join([*CONTRACT[entity], *STAGED_LINEAGE_COLUMNS])
    con.execute(
        f"insert into {RAW_SCHEMA}.{entity} ({staged}, _batch_id) "
        f"select {staged}, ? from {_staged_table(entity)}",
        [batch_id],
    )
    manifest = pd.DataFrame(
        {
            "entity": entity,
            "partition_date": [p.partition_date for p, _, _ in changed],
            "fingerprint": [fingerprint for _, fingerprint, _ in changed],
            "row_count": [rows.get(p.partition_date, 0) for p, _, _ in changed],
            "batch_id": batch_id,
            "loaded_for_run_date": run_date,
            "file_stats": pd.Series([stats for _, _, stats in changed], dtype="object"),
        }
    )
    con.register("manifest_rows", manifest)
    columns = ", ".join(manifest.columns)
    con.execute(
        f"insert or replace into {RAW_SCHEMA}.landing_manifest ({columns}) "
        f"select {columns} from manifest_rows"
    )
    for name in ("replaced_days", "manifest_rows"):
        con.unregister(name)


def _replace_quarantine(con, entity, days, batch_id) -> None:
    """Replace the quarantined lines of the given partitions with the staged ones (caller
    holds a transaction): a rerun of a partition replaces its quarantine rows, it never adds
    to them."""
    con.register("replaced_days", _days_frame(days))
    con.execute(
        f"delete from {QUARANTINE_TABLE} where entity = ? "
        "and partition_date in (select partition_date from replaced_days)",
        [entity],
    )
    con.unregister("replaced_days")
    columns = ", ".join(QUARANTINE_COLUMNS)
    con.execute(
        f"insert into {QUARANTINE_TABLE} ({columns}, batch_id) "
        f"select {columns}, ? from {STAGED_QUARANTINE} where entity = ?",
        [batch_id, entity],
    )


def _record_file_stats(con, restated: dict[tuple[str, dt.date], str]) -> None:
    """Record the stat signature of partitions found unchanged by their bytes (copied or
    touched files), so later runs need not read them again (caller holds a transaction)."""
    import pandas as pd

    if not restated:
        return
    frame = pd.DataFrame(
        [(entity, day, stats) for (entity, day), stats in restated.items()],
        columns=["entity", "partition_date", "file_stats"],
    )
    con.register("restated", frame)
    con.execute(
        f"update {RAW_SCHEMA}.landing_manifest as manifest set file_stats = restated.file_stats "
        "from restated where manifest.entity = restated.entity "
        "and manifest.partition_date = restated.partition_date"
    )
    con.unregister("restated")
