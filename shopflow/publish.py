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
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.warehouse import connect, file_lock

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from shopflow.settings import Settings

log = logging.getLogger(__name__)

EXPORT_TABLES = ("recommendations", "demand_forecast")
EXPORT_DDL = {
    "recommendations": """
        run_date DATE NOT NULL,
        customer_id VARCHAR NOT NULL,
        rank INTEGER NOT NULL,
        product_id VARCHAR NOT NULL,
        score DOUBLE NOT NULL,
        reason VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        PRIMARY KEY (run_date, customer_id, rank)
    """,
    "demand_forecast": """
        run_date DATE NOT NULL,
        product_id VARCHAR NOT NULL,
        forecast_date DATE NOT NULL,
        horizon_days INTEGER NOT NULL,
        units_mean DOUBLE NOT NULL,
        units_p10 DOUBLE NOT NULL,
        units_p50 DOUBLE NOT NULL,
        units_p90 DOUBLE NOT NULL,
        model_version VARCHAR NOT NULL,
        PRIMARY KEY (run_date, product_id, forecast_date)
    """,
    "model_performance": """
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        segment VARCHAR NOT NULL,
        value DOUBLE,
        task VARCHAR NOT NULL,
        holdout_start DATE,
        status VARCHAR,
        PRIMARY KEY (model_name, model_version, metric, segment)
    """,
    "model_registry": """
        model_name VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        cutoff_date DATE NOT NULL,
        sha256 VARCHAR NOT NULL,
        created_by VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        status_reason VARCHAR,
        code_version VARCHAR,
        PRIMARY KEY (model_name, version)
    """,
}
ORDER_BY = {
    "recommendations": ["customer_id", "rank"],
    "demand_forecast": ["product_id", "forecast_date"],
}


def read_predictions(settings: Settings, run_date: dt.date) -> dict[str, pd.DataFrame]:
    with connect(settings, read_only=True) as con:
        return {
            table: con.execute(
                f"select * from predictions.{table} where run_date = ? "
                f"order by {', '.join(ORDER_BY[table])}",
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
    perf_columns = [
        line.split()[0]
        for line in EXPORT_DDL["model_performance"].strip().splitlines()
        if not line.strip().startswith("PRIMARY")
    ]
    reg_columns = [
        line.split()[0]
        for line in EXPORT_DDL["model_registry"].strip().splitlines()
        if not line.strip().startswith("PRIMARY")
    ]
    return pd.DataFrame(perf, columns=perf_columns), pd.DataFrame(
        registry_rows, columns=reg_columns
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
        for table, ddl in EXPORT_DDL.items():
            con.execute(f"create table if not exists exports.{table} ({ddl})")
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
        con.execute(f"create table if not exists exports.{table} ({EXPORT_DDL[table]})")
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
