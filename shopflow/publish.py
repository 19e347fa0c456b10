"""Publish a run's predictions: the ``exports`` schema of the published DuckDB file, and Parquet.

Analysts read ``$SHOPFLOW_HOME/exports/shopflow.duckdb`` (and the Parquet mirror), never the
warehouse. Publishing is all-or-nothing:

- Parquet: each table's ``run_date=<D>/`` folder is written next to its final place and then
  swapped in with renames, so a reader sees the old folder or the new one, never half a file.
- DuckDB: the current published file is copied, the copy is updated (the run date's rows are
  deleted and inserted in one transaction) and then moved over the original with
  ``os.replace`` (atomic on one filesystem). Analysts holding the old file open keep reading
  the old version; nobody ever needs a write lock on the file they query.

Only this module writes the published file, under its own lock (see shopflow.warehouse).
A rerun for the same date replaces that date's rows: same rows, no duplicates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.warehouse import connect, file_lock

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from shopflow.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportSchema:
    """One table of the ``exports`` schema: its columns in order (name -> DuckDB type), the
    columns that may be null (every other one is NOT NULL), its primary key, and for a
    per-run-date table the order its rows are read and written in."""

    columns: dict[str, str]
    key: tuple[str, ...]
    nullable: frozenset[str] = frozenset()
    order_by: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def ddl(self) -> str:
        """The column and key definitions of ``create table exports.<table> (...)``."""
        columns = [
            f"{name} {dtype}" + ("" if name in self.nullable else " NOT NULL")
            for name, dtype in self.columns.items()
        ]
        return ", ".join([*columns, f"PRIMARY KEY ({', '.join(self.key)})"])


# The output contract (README, docs/design.md "Output contract"): changing a table here
# changes the public API.
EXPORT_SCHEMAS = {
    "recommendations": ExportSchema(
        columns={
            "run_date": "DATE",
            "customer_id": "VARCHAR",
            "rank": "INTEGER",
            "product_id": "VARCHAR",
            "score": "DOUBLE",
            "reason": "VARCHAR",
            "model_version": "VARCHAR",
        },
        key=("run_date", "customer_id", "rank"),
        order_by=("customer_id", "rank"),
    ),
    "demand_forecast": ExportSchema(
        columns={
            "run_date": "DATE",
            "product_id": "VARCHAR",
            "forecast_date": "DATE",
            "horizon_days": "INTEGER",
            "units_mean": "DOUBLE",
            "units_p10": "DOUBLE",
            "units_p50": "DOUBLE",
            "units_p90": "DOUBLE",
            "model_version": "VARCHAR",
        },
        key=("run_date", "product_id", "forecast_date"),
        order_by=("product_id", "forecast_date"),
    ),
    "model_performance": ExportSchema(
        columns={
            "model_name": "VARCHAR",
            "model_version": "VARCHAR",
            "metric": "VARCHAR",
            "segment": "VARCHAR",
            "value": "DOUBLE",
            "task": "VARCHAR",
            "holdout_start": "DATE",
            "status": "VARCHAR",
        },
        key=("model_name", "model_version", "metric", "segment"),
        nullable=frozenset({"value", "holdout_start", "status"}),
    ),
    "model_registry": ExportSchema(
        columns={
            "model_name": "VARCHAR",
            "version": "VARCHAR",
            "status": "VARCHAR",
            "cutoff_date": "DATE",
            "sha256": "VARCHAR",
            "created_by": "VARCHAR",
            "created_at": "TIMESTAMP",
            "status_reason": "VARCHAR",
            "code_version": "VARCHAR",
        },
        key=("model_name", "version"),
        nullable=frozenset({"status_reason", "code_version"}),
    ),
}
# Tables with one set of rows per run date, from the predictions schema of the warehouse; the
# others are rebuilt whole from the registry.
EXPORT_TABLES = ("recommendations", "demand_forecast")


def read_predictions(settings: Settings, run_date: dt.date) -> dict[str, pd.DataFrame]:
    """The run date's rows of each per-run-date table in the warehouse's ``predictions``
    schema, in the table's published order."""
    with connect(settings, read_only=True) as con:
        return {
            table: con.execute(
                f"select * from predictions.{table} where run_date = ? "
                f"order by {', '.join(EXPORT_SCHEMAS[table].order_by)}",
                [run_date],
            ).df()
            for table in EXPORT_TABLES
        }


def performance_rows(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """model_performance and model_registry frames from the registry's records."""
    import pandas as pd

    from shopflow.registry import Registry

    perf, registry_rows = [], []
    for version in Registry(settings).versions():
        registry_rows.append(
            {
                "model_name": version.model_name,
                "version": version.version,
                "status": version.status,
                "cutoff_date": version.cutoff_date,
                "sha256": version.sha256,
                "created_by": version.created_by,
                "created_at": version.created_at,
                "status_reason": version.status_reason,
                "code_version": version.code_version,
            }
        )
        holdout = version.metrics.get("holdout_origin") or version.metrics.get("holdout_cutoff")
        for candidate, scores in version.metrics.get("results", {}).items():
            name = version.model_name if candidate == "model" else candidate
            for key, value in scores.items():
                metric, _, segment = key.partition(":")
                perf.append(
                    {
                        "model_name": name,
                        "model_version": version.version,
                        "metric": metric,
                        "segment": segment or "all",
                        "value": None if value is None else float(value),
                        "task": version.model_name,
                        "holdout_start": dt.date.fromisoformat(holdout) if holdout else None,
                        "status": version.status if candidate == "model" else "baseline",
                    }
                )
    return (
        pd.DataFrame(perf, columns=EXPORT_SCHEMAS["model_performance"].column_names),
        pd.DataFrame(registry_rows, columns=EXPORT_SCHEMAS["model_registry"].column_names),
    )


def _swap_in_dir(staged: Path, final: Path) -> None:
    """Replace ``final`` by ``staged`` with renames (old folder removed afterwards)."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    if old.exists():
        shutil.rmtree(old)


def parquet_dir(settings: Settings, table: str, run_date: dt.date) -> Path:
    return settings.exports_dir / table / f"run_date={run_date.isoformat()}"


def stage_parquet(settings: Settings, table: str, run_date: dt.date, frame: pd.DataFrame) -> Path:
    """Write the table's Parquet for the run date next to its final folder."""
    final = parquet_dir(settings, table, run_date)
    staged = final.with_name(final.name + ".staged")
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    frame.to_parquet(staged / "part-0.parquet", index=False)
    return staged


def stage_published_db(
    settings: Settings, run_date: dt.date, tables: dict[str, pd.DataFrame]
) -> Path:
    """A copy of the published database with the run date's rows replaced."""
    import duckdb

    target = settings.published_db_path
    staged = target.with_name(target.name + ".staged")
    if staged.exists():
        staged.unlink()
    if target.exists():
        shutil.copyfile(target, staged)
    con = duckdb.connect(str(staged))
    try:
        con.execute("create schema if not exists exports")
        for table, schema in EXPORT_SCHEMAS.items():
            con.execute(f"create table if not exists exports.{table} ({schema.ddl()})")
        comment_on_exports(con, settings)
        con.execute("begin transaction")
        for table in EXPORT_TABLES:
            columns = list(tables[table].columns)
            con.execute(f"delete from exports.{table} where run_date = ?", [run_date])
            con.register("incoming", tables[table])
            con.execute(
                f"insert into exports.{table} ({', '.join(columns)}) "
                f"select {', '.join(columns)} from incoming"
            )
            con.unregister("incoming")
        _replace_registry_tables(con, tables["model_performance"], tables["model_registry"])
        con.execute("commit")
        con.execute("checkpoint")
    finally:
        con.close()
    return staged


def publish(settings: Settings, run_date: dt.date) -> dict:
    """Publish the run date's predictions; returns row counts and output locations."""
    predictions = read_predictions(settings, run_date)
    for table, frame in predictions.items():
        if frame.empty:
            raise RuntimeError(
                f"nothing to publish: predictions.{table} has no rows for {run_date}"
            )
    perf, registry_rows = performance_rows(settings)
    tables = {**predictions, "model_performance": perf, "model_registry": registry_rows}
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    lock = settings.published_db_path.with_suffix(".duckdb.lock")
    with file_lock(lock):
        # stage everything first: a failure here leaves the published outputs untouched
        staged_dirs: dict[str, Path] = {}
        try:
            for table in EXPORT_TABLES:
                staged_dirs[table] = stage_parquet(settings, table, run_date, predictions[table])
            staged_db = stage_published_db(settings, run_date, tables)
        except BaseException:
            for staged in staged_dirs.values():
                shutil.rmtree(staged, ignore_errors=True)
            settings.published_db_path.with_name(
                settings.published_db_path.name + ".staged"
            ).unlink(missing_ok=True)
            raise
        # then swap in: renames only
        for table, staged in staged_dirs.items():
            _swap_in_dir(staged, parquet_dir(settings, table, run_date))
        os.replace(staged_db, settings.published_db_path)
    parquet_dirs = {t: str(parquet_dir(settings, t, run_date)) for t in EXPORT_TABLES}
    summary = {
        "run_date": run_date.isoformat(),
        "published_db": str(settings.published_db_path),
        "rows": {table: int(len(frame)) for table, frame in tables.items()},
        "parquet": parquet_dirs,
    }
    log.info("published %s", json.dumps(summary))
    return summary


def _replace_registry_tables(con, perf: pd.DataFrame, registry_rows: pd.DataFrame) -> None:
    """Rebuild the registry-derived tables whole (they are small), in the caller's transaction."""
    for table, frame in (("model_performance", perf), ("model_registry", registry_rows)):
        con.execute(f"create table if not exists exports.{table} ({EXPORT_SCHEMAS[table].ddl()})")
        con.execute(f"delete from exports.{table}")
        con.register("incoming", frame)
        con.execute(f"insert into exports.{table} select * from incoming")
        con.unregister("incoming")


def publish_registry_tables(settings: Settings) -> None:
    """Rewrite exports.model_performance / model_registry of the published file now.

    Used by the backtest commands so analysts see new results before the next nightly
    publish. Same copy-then-rename swap and lock as :func:`publish`; without a published file
    there is nothing to update and the next publish exports the rows.
    """
    import duckdb

    target = settings.published_db_path
    if not target.exists():
        return
    perf, registry_rows = performance_rows(settings)
    with file_lock(target.with_suffix(".duckdb.lock")):
        staged = target.with_name(target.name + ".staged")
        shutil.copyfile(target, staged)
        con = duckdb.connect(str(staged))
        try:
            con.execute("begin transaction")
            _replace_registry_tables(con, perf, registry_rows)
            con.execute("commit")
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(staged, target)


def export_descriptions(settings: Settings) -> dict[str, dict]:
    """Table -> {"description", "columns": {column: description}} of the exported tables,
    from the dbt docs' YAML (source ``exports``): one text for dbt docs and COMMENT ON."""
    import yaml

    path = settings.dbt_project_dir / "models" / "exports" / "_exports__sources.yml"
    (source,) = [s for s in yaml.safe_load(path.read_text())["sources"] if s["name"] == "exports"]
    return {
        table["name"]: {
            "description": " ".join(str(table.get("description", "")).split()),
            "columns": {
                column["name"]: " ".join(str(column.get("description", "")).split())
                for column in table.get("columns", [])
            },
        }
        for table in source["tables"]
    }


def comment_on_exports(con, settings: Settings) -> None:
    """COMMENT ON every exported table and column, so the published file explains itself
    (``select comment from duckdb_columns()``)."""

    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    for table, docs in export_descriptions(settings).items():
        if table not in EXPORT_SCHEMAS:
            continue
        con.execute(f"comment on table exports.{table} is {quoted(docs['description'])}")
        for column, text in docs["columns"].items():
            if column in EXPORT_SCHEMAS[table].columns:
                con.execute(f"comment on column exports.{table}.{column} is {quoted(text)}")
