"""The load: validated partitions replace their rows in ``raw`` in one transaction.

For business date D, every partition dated on or before D that the manifest
(:mod:`shopflow.ingest.manifest`) finds new or changed is read, cast to the landing contract
(:mod:`shopflow.ingest.reading`) and validated (:mod:`shopflow.ingest.gate`). Only when no
partition fails a blocking check are the partitions written, in one transaction that replaces
each partition's rows (delete + insert, never a blind append) and records the new
fingerprints. A failed gate therefore changes nothing.

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
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shopflow.ingest.gate import (
    VOLUME_MIN_HISTORY,
    log_partitions,
    partition_summary,
    quarantine_frame,
    validate_entity,
    validate_partitions,
    volume_history,
)
from shopflow.ingest.manifest import (
    next_batch_id,
    read_file_stats,
    read_manifest,
    record_file_stats,
    record_partitions,
    scan_landing,
)
from shopflow.ingest.reading import LandingFormatError, estimate_rows, read_partitions
from shopflow.ingest.tables import (
    LINEAGE_COLUMNS,
    QUARANTINE_COLUMNS,
    QUARANTINE_TABLE,
    RAW_SCHEMA,
    ensure_raw_tables,
)
from shopflow.landing import CONTRACT, REQUIRED_ENTITIES, Partition
from shopflow.quality import build_data_docs, raise_if_blocked
from shopflow.warehouse import connect

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from shopflow.quality import QualityReport
    from shopflow.settings import Settings

log = logging.getLogger(__name__)

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
        """Counts per entity, JSON-ready: what the nightly task returns and logs."""
        return {
            "run_date": self.run_date.isoformat(),
            "batch_id": self.batch_id,
            "partitions_loaded": {k: len(v) for k, v in self.partitions.items()},
            "rows_loaded": self.rows,
            "rows_quarantined": self.quarantined,
            "partitions_unchanged": self.unchanged,
        }


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
    result = IngestResult(run_date=run_date)
    run_name = f"nightly_{run_date.isoformat()}"
    # One connection from the manifest read to the commit: it holds the warehouse's file
    # lock (shopflow.warehouse.connect), so no other writer runs in between, and the TEMP
    # tables staging the rows are its own.
    with connect(settings) as con:
        ensure_raw_tables(con)
        manifest = read_manifest(con)
        scan = scan_landing(settings, run_date, manifest, read_file_stats(con))
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
        raise_if_blocked(result.reports, settings.home)
        for report in result.reports:
            for warning in report.warnings:
                log.warning("%s: %s", report.batch, warning.message())

        batch_id = next_batch_id(con)
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
            record_file_stats(con, scan.restated)
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
    history_load = _history_load(history, settings)
    row_reports: list[QualityReport] = []
    partition_reports: list[QualityReport] = []
    rows = {p.partition_date: 0 for p in partitions}
    quarantined = 0
    blocked = False
    if entity == "order_lines":
        _create_batch_keys(con, [p.partition_date for p in partitions])
    for group in partition_groups(partitions):
        frame = read_partitions(group, entity, settings, extra_columns)
        if entity == "order_lines":
            mark_lines_loaded_elsewhere(con, frame)
            compare_with_history(con, frame, settings)
        reports = validate_entity(
            frame, entity, group, settings, run_name, name_partitions=len(partitions) > 1
        )
        bad = set().union(*(r.quarantined_indexes() for r in reports))
        summary = partition_summary(
            con, entity, frame, bad, group, extra_columns, history, history_load=history_load
        )
        checks = validate_partitions(summary, entity, settings, run_name)
        log_partitions(summary)
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


def _history_load(history: dict[dt.date, int], settings: Settings):
    """Which partitions are history being loaded, whose volume only warns: every partition
    of a first load (nothing of the entity loaded yet), and those dated before the last
    loaded partition (a backfill or restatement of the past). None when the configuration
    says volume blocks history too (``quality.history_volume_severity = "blocking"``)."""
    if settings.history_volume_severity == "blocking":
        return None
    if not history:
        return lambda day: True
    last_loaded = max(history)
    return lambda day: day < last_loaded


_BATCH_KEYS = "batch_order_line_keys"


def _create_batch_keys(con, replaced_days: list[dt.date]) -> None:
    """TEMP tables for :func:`mark_lines_loaded_elsewhere`: the dates this batch replaces
    (their raw rows do not count as loaded) and the keys of its groups read so far."""
    con.execute("create or replace temp table batch_replaced_days (partition_date date)")
    con.executemany("insert into batch_replaced_days values (?)", [[d] for d in replaced_days])
    con.execute(
        f"create or replace temp table {_BATCH_KEYS} "
        "(order_id varchar, line_number integer, partition_date date)"
    )


def mark_lines_loaded_elsewhere(con, frame: pd.DataFrame) -> None:
    """Set ``_other_partition_date`` on each order line whose (order_id, line_number) is
    already loaded under another date (raw, outside the partitions being replaced), or is in
    an earlier partition of this batch: the first copy loaded wins, and the suite quarantines
    the others (rule ``line_under_another_date``), naming file and line. Orders re-sent under
    a new date are caught here, at the gate, instead of by a dbt test after the load."""
    from shopflow.ingest.gate import OTHER_PARTITION_COLUMN

    keys = frame[["order_id", "line_number", "_partition_date"]].assign(_position=range(len(frame)))
    con.register("group_keys", keys)
    try:
        other = con.execute(
            f"""
            with g as (
                select _position as position, order_id, line_number, _partition_date as day
                from group_keys
            ),
            loaded as (
                select order_id, line_number, _partition_date as day from {RAW_SCHEMA}.order_lines
                where _partition_date not in (select partition_date from batch_replaced_days)
            ),
            found as (
                select g.position, l.day as other from g
                join loaded l using (order_id, line_number) where l.day <> g.day
                union all
                select g.position, b.partition_date from g
                join {_BATCH_KEYS} b using (order_id, line_number) where b.partition_date < g.day
                union all
                select g.position, e.day from g
                join g e using (order_id, line_number) where e.day < g.day
            )
            select position, strftime(min(other), '%Y-%m-%d') from found group by position
            """
        ).fetchall()
        con.execute(
            f"insert into {_BATCH_KEYS} select distinct order_id, line_number, _partition_date "
            "from group_keys where order_id is not null and line_number is not null"
        )
    finally:
        con.unregister("group_keys")
    column = [None] * len(frame)
    for position, day in other:
        column[position] = day
    frame[OTHER_PARTITION_COLUMN] = column


def compare_with_history(con, frame: pd.DataFrame, settings: Settings) -> None:
    """Set ``_quantity_vs_history`` on each order line: its units over the largest line its
    product had among the lines already loaded (outside the partitions being replaced), that
    reference raised to the shop's largest line / implausible_line_factor, so the ratio is
    above the factor only beyond both; null with fewer than VOLUME_MIN_HISTORY days loaded
    (a first load: too little history to judge by). The suite
    warns about (or quarantines, setting quality.implausible_line_severity) a line far beyond
    anything the shop sold, instead of publishing it without a word."""
    from shopflow.ingest.gate import QUANTITY_VS_HISTORY_COLUMN

    loaded = f"""
        select * from {RAW_SCHEMA}.order_lines
        where _partition_date not in (select partition_date from batch_replaced_days)
    """
    days = con.execute(f"select count(distinct _partition_date) from ({loaded})").fetchone()[0]
    largest = con.execute(
        f"select product_id, max(abs(quantity)) from ({loaded}) group by product_id"
    ).fetchall()
    if not largest or days < VOLUME_MIN_HISTORY:  # too little history to judge by
        frame[QUANTITY_VS_HISTORY_COLUMN] = float("nan")
        return
    # A wholesaler's first large order of a slow product is normal: a line is implausible only
    # beyond the factor times its product's largest line AND beyond the shop's largest line.
    factor = settings.implausible_line_factor
    by_product = dict(largest)
    shop = max(value for _, value in largest) or 1
    reference = frame["product_id"].map(by_product).fillna(0).clip(lower=shop / factor)
    ratio = frame["quantity"].astype("Float64").abs() / reference
    frame[QUANTITY_VS_HISTORY_COLUMN] = ratio.to_numpy("float64", na_value=float("nan"))


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


def _days_frame(days):
    import pandas as pd

    return pd.DataFrame({"partition_date": sorted(days)})


def _replace_partitions(con, entity, changed, rows, batch_id, run_date) -> None:
    """Delete the partitions' old rows, insert the staged ones and record the partitions in
    the manifest (caller holds a transaction). ``changed``: (partition, fingerprint, stat
    signature); ``rows``: kept rows per partition date."""
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
    con.unregister("replaced_days")
    record_partitions(con, entity, changed, rows, batch_id, run_date)


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
