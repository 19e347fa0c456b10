"""Ingest: landing partitions -> ``raw`` tables in the warehouse, behind the quality gate.

For business date D, every partition dated on or before D whose fingerprint (file names and
bytes) differs from the one recorded in ``raw.landing_manifest`` is read, cast to the landing
contract and validated. Only when no partition fails a blocking check are the partitions
written, in one transaction that replaces each partition's rows (delete + insert, never a
blind append) and records the new fingerprints. A failed gate therefore changes nothing.
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
    reports: list[QualityReport] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "run_date": self.run_date.isoformat(),
            "batch_id": self.batch_id,
            "partitions_loaded": {k: len(v) for k, v in self.partitions.items()},
            "rows_loaded": self.rows,
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


def _read_parquet_files(con, files: list[tuple[Path, str]], entity: str) -> pd.DataFrame:
    """All Parquet files of an entity in one scan, after a per-file schema check."""
    import duckdb
    import pyarrow.parquet as pq

    columns = CONTRACT[entity]
    for path, label in files:
        try:
            present = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise LandingFormatError(f"{label}: not a readable Parquet file: {exc}") from exc
        missing = [c for c in columns if c not in present]
        if missing:
            raise LandingFormatError(
                f"{label}: missing required column(s) {', '.join(missing)} "
                f"(found: {', '.join(present) or 'none'})"
            )
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


def _read_csv_file(con, path: Path, label: str, entity: str) -> pd.DataFrame:
    """One CSV file read as text, so a bad value is reported with its line, not a stack trace."""
    import duckdb

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
    missing = [c for c in columns if c not in present]
    if missing:
        raise LandingFormatError(
            f"{label}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(present) or 'none'})"
        )
    try:
        _check_types(con, columns, "_source_file", "_source_line", "line")
        return con.execute(
            f"select {_cast_select(columns, ['_source_file', '_source_line'])} from src"
        ).df()
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{label}: cannot be read as {entity} CSV: {_first_error_line(exc)}"
        ) from exc


def read_partitions(partitions: list[Partition], entity: str, settings: Settings) -> pd.DataFrame:
    """Every file of the given partitions of one entity, cast to the contract, with lineage
    columns ``_partition_date``, ``_source_file`` (relative to SHOPFLOW_HOME), ``_source_line``.
    Raises :class:`LandingFormatError` naming the file for anything unreadable."""
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
    con = duckdb.connect()
    try:
        con.execute("set threads = 2")
        if parquet:
            frames.append(_read_parquet_files(con, parquet, entity))
        for file, label in csv:
            frames.append(_read_csv_file(con, file, label, entity))
    finally:
        con.close()
    columns = [*CONTRACT[entity], "_source_file", "_source_line"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for name, dtype in CONTRACT[entity].items():
        if dtype.startswith("DECIMAL"):
            # decimals travel as floats in frames; the raw table stores DECIMAL again
            frame[name] = frame[name].astype("float64")
    frame.insert(0, "_partition_date", frame["_source_file"].map(by_file))
    return frame


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


def validate_entity(
    frame: pd.DataFrame, entity: str, partitions: list[Partition], settings: Settings, run_name
) -> list[QualityReport]:
    """Validate an entity's new partitions in one pass; on a blocking failure, validate each
    partition on its own so the report names the partition (and file) that broke the rule."""
    from shopflow.quality import validate_frame

    suite = f"landing_{entity}"
    columns = list(CONTRACT[entity])
    days = sorted(p.partition_date for p in partitions)
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
    report = validate_frame(
        frame[columns],
        suite,
        batch=f"landing/{entity}/{span}",
        settings=settings,
        run_name=run_name,
    )
    if not report.blocked or len(partitions) == 1:
        return [report]
    reports = []
    for day, part in frame.groupby("_partition_date", sort=True):
        files = ", ".join(sorted(part["_source_file"].unique()))
        reports.append(
            validate_frame(
                part[columns],
                suite,
                batch=f"landing/{entity}/{day} ({files})",
                settings=settings,
                run_name=run_name,
            )
        )
    return [r for r in reports if r.blocked] or [report]


def ingest_landing(settings: Settings, run_date: dt.date) -> IngestResult:
    """Validate and load every new or changed landing partition up to ``run_date``.

    Raises :class:`LandingFormatError` or :class:`shopflow.quality.QualityGateError` before
    writing anything if a partition is unreadable or fails a blocking expectation.
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
            frame = read_partitions(partitions, entity, settings)
            result.reports.extend(validate_entity(frame, entity, partitions, settings, run_name))
            fingerprints = {p.partition_date: fp for p, fp in todo if p.entity == entity}
            loaded.append((entity, frame, fingerprints))
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
            for entity, frame, fingerprints in loaded:
                _replace_partitions(con, entity, frame, fingerprints, batch_id, run_date)
                result.partitions[entity] = sorted(d.isoformat() for d in fingerprints)
                result.rows[entity] = len(frame)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    log.info("ingested %s", result.as_dict())
    return result


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
