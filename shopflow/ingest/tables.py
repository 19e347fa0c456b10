"""The warehouse tables ingest writes: ``raw.<entity>``, ``raw.landing_manifest`` and
``quality.quarantine``, with their lineage columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopflow.landing import CONTRACT

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

RAW_SCHEMA = "raw"
LINEAGE_COLUMNS = {
    "_partition_date": "DATE",
    "_source_file": "VARCHAR",
    "_source_line": "BIGINT",
    "_batch_id": "BIGINT",
}
MANIFEST_TABLE = f"{RAW_SCHEMA}.landing_manifest"

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


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema, one table per landing entity, and the manifest (idempotent)."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    for entity, columns in CONTRACT.items():
        cols = {**columns, **LINEAGE_COLUMNS}
        ddl = ", ".join(f"{name} {dtype}" for name, dtype in cols.items())
        con.execute(f"create table if not exists {RAW_SCHEMA}.{entity} ({ddl})")
    con.execute(
        f"""
        create table if not exists {MANIFEST_TABLE} (
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
        con.execute(f"alter table {MANIFEST_TABLE} add column file_stats varchar")
    con.execute(f"create schema if not exists {QUALITY_SCHEMA}")
    ddl = ", ".join(f"{name} {dtype}" for name, dtype in QUARANTINE_COLUMNS.items())
    con.execute(f"create table if not exists {QUARANTINE_TABLE} ({ddl}, batch_id BIGINT NOT NULL)")
