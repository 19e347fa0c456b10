"""Publish a run's predictions: the ``exports`` schema of the published DuckDB file, and Parquet.

Analysts read ``$SHOPFLOW_HOME/exports/shopflow.duckdb`` (and the Parquet mirror), never the
warehouse. Publishing is all-or-nothing, for the DuckDB file and the Parquet together: each
publish builds a new snapshot (a copy of the published DuckDB file with the run date's rows
replaced in one transaction, the date's Parquet written, every other date's Parquet
hard-linked) and makes it visible with one atomic rename of the ``exports`` symlink (see
:mod:`shopflow.snapshots` for why and for crash recovery). Analysts holding old files open
keep reading the old version; nobody ever needs a write lock on the file they query.

Only this module writes published snapshots, under one lock (:func:`snapshots.publish_lock`).
A rerun for the same date replaces that date's rows: same rows, no duplicates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow import snapshots
from shopflow.failpoints import failpoint
from shopflow.warehouse import connect

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
    # live accuracy (dbt_project/models/live/, shopflow.jobs.feedback), rebuilt whole
    "forecast_accuracy": ExportSchema(
        columns={
            "run_date": "DATE",
            "model_name": "VARCHAR",
            "model_version": "VARCHAR",
            "horizon_bucket": "VARCHAR",
            "volume_tier": "VARCHAR",
            "metric": "VARCHAR",
            "value": "DOUBLE",
            "products": "BIGINT",
            "actual_units": "DOUBLE",
            "evaluated_through": "DATE",
        },
        key=("run_date", "model_name", "horizon_bucket", "volume_tier", "metric"),
        nullable=frozenset({"model_version", "value"}),
    ),
    "recommendation_outcomes": ExportSchema(
        columns={
            "run_date": "DATE",
            "model_name": "VARCHAR",
            "model_version": "VARCHAR",
            "reason": "VARCHAR",
            "metric": "VARCHAR",
            "value": "DOUBLE",
            "customers": "BIGINT",
            "hits": "BIGINT",
            "evaluated_through": "DATE",
        },
        key=("run_date", "model_name", "reason", "metric"),
        nullable=frozenset({"model_version", "value"}),
    ),
    # the catalogue the lists and forecasts refer to, as of the latest published run date
    "products": ExportSchema(
        columns={
            "product_id": "VARCHAR",
            "product_name": "VARCHAR",
            "category": "VARCHAR",
            "list_price": "DOUBLE",
            "is_non_product": "BOOLEAN",
            "first_sold_date": "DATE",
            "last_sold_date": "DATE",
            "as_of_date": "DATE",
        },
        key=("product_id",),
        nullable=frozenset({"category", "list_price", "first_sold_date", "last_sold_date"}),
    ),
}
PUBLISHED_DB = "shopflow.duckdb"  # inside a snapshot; analysts open exports/shopflow.duckdb
# Tables with one set of rows per run date, from the predictions schema of the warehouse; the
# others are rebuilt whole from the registry.
EXPORT_TABLES = ("recommendations", "demand_forecast")
# The live-accuracy tables (dbt models of schema ``live``, see docs/lifecycle.md) and the
# exports they are published as, whole, at every publish.
LIVE_TABLES = {
    "forecast_accuracy": "live.live_forecast_accuracy",
    "recommendation_outcomes": "live.live_recommendation_outcomes",
}


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


def parquet_dir(settings: Settings, table: str, run_date: dt.date) -> Path:
    """Where analysts find ``table``'s Parquet for ``run_date`` (through ``exports``)."""
    return settings.exports_dir / table / f"run_date={run_date.isoformat()}"


def _partition(table: str, run_date: dt.date) -> str:
    return f"{table}/run_date={run_date.isoformat()}"


def stage_parquet(snapshot: Path, table: str, run_date: dt.date, frame: pd.DataFrame) -> Path:
    """Write the table's Parquet for the run date into the snapshot being built."""
    folder = snapshot / _partition(table, run_date)
    folder.mkdir(parents=True)
    path = folder / "part-0.parquet"
    frame.to_parquet(path, index=False)
    _fsync(path)
    return folder


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage_published_db(snapshot: Path, run_date: dt.date, tables: dict[str, pd.DataFrame]) -> Path:
    """Update the snapshot's copy of the published database: the run date's rows replaced
    and the registry tables rebuilt, in one transaction."""
    import duckdb

    staged = snapshot / PUBLISHED_DB
    con = duckdb.connect(str(staged))
    try:
        con.execute("create schema if not exists exports")
        for table, schema in EXPORT_SCHEMAS.items():
            con.execute(f"create table if not exists exports.{table} ({schema.ddl()})")
        comment_on_exports(con)
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
        replace_live_tables(con, tables)
        if "products" in tables:
            replace_products(con, run_date, tables["products"])
        con.execute("commit")
        con.execute("checkpoint")
    finally:
        con.close()
    return staged


def _check_free_space(settings: Settings, tables: dict[str, pd.DataFrame]) -> None:
    """A new snapshot needs a copy of the published file plus the date's rows (with room)."""
    from shopflow.machine import require_free_space

    db = settings.published_db_path
    size = db.stat().st_size if db.exists() else 0
    rows = sum(int(frame.memory_usage(deep=True).sum()) for frame in tables.values())
    require_free_space(settings.home, int(1.2 * size) + 2 * rows + 16 * 1024 * 1024, "publishing")


# A check of the built snapshot before anyone can see it: receives the snapshot directory,
# raises to refuse it (nothing changes for readers).
SnapshotCheck = Callable[[Path], None]


def publish(settings: Settings, run_date: dt.date, *, check: SnapshotCheck | None = None) -> dict:
    """Publish the run date's predictions as one new snapshot; returns row counts and
    output locations.

    ``check`` (optional) inspects the built snapshot before it becomes visible; when it
    raises, the snapshot is discarded and the exception propagates.
    """
    predictions = read_predictions(settings, run_date)
    for table, frame in predictions.items():
        if frame.empty:
            raise RuntimeError(
                f"nothing to publish: predictions.{table} has no rows for {run_date}"
            )
    perf, registry_rows = performance_rows(settings)
    tables = {**predictions, "model_performance": perf, "model_registry": registry_rows}
    tables.update(live_frames(settings))
    tables["products"] = products_frame(settings, run_date)
    with snapshots.publish_lock(settings):
        snapshots.recover(settings)
        _check_free_space(settings, tables)
        with snapshots.new_snapshot(
            settings,
            copy={PUBLISHED_DB},
            skip_dirs={_partition(t, run_date) for t in EXPORT_TABLES},
        ) as snapshot:
            for table in EXPORT_TABLES:
                stage_parquet(snapshot, table, run_date, predictions[table])
                failpoint("publish.parquet_written")
            stage_published_db(snapshot, run_date, tables)
            if check is not None:
                check(snapshot)
        number = snapshots.current_number(settings)
        _clear_attempt(settings, run_date)
    parquet_dirs = {t: str(parquet_dir(settings, t, run_date)) for t in EXPORT_TABLES}
    summary = {
        "run_date": run_date.isoformat(),
        "published_db": str(settings.published_db_path),
        "snapshot": snapshots.snapshot_name(number),
        "rows": {table: int(len(frame)) for table, frame in tables.items()},
        "parquet": parquet_dirs,
    }
    log.info("published %s", json.dumps(summary))
    return summary


def live_frames(settings: Settings) -> dict[str, pd.DataFrame]:
    """The live tables as published (``exports.forecast_accuracy`` and
    ``exports.recommendation_outcomes``); empty frames before the first evaluation."""
    import pandas as pd

    from shopflow.warehouse import table_exists

    frames = {}
    with connect(settings, read_only=True) as con:
        for export, relation in LIVE_TABLES.items():
            columns = EXPORT_SCHEMAS[export].column_names
            schema, table = relation.split(".")
            if table_exists(con, schema, table):
                frames[export] = con.execute(
                    f"select {', '.join(columns)} from {relation} order by all"
                ).df()
            else:
                frames[export] = pd.DataFrame(columns=columns)
    return frames


def products_frame(settings: Settings, run_date: dt.date) -> pd.DataFrame:
    """``exports.products`` for the run date: the warehouse's ``marts.dim_products`` (built as
    of the run date); empty before the warehouse has one."""
    import pandas as pd

    from shopflow.warehouse import table_exists

    columns = EXPORT_SCHEMAS["products"].column_names
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "marts", "dim_products"):
            return pd.DataFrame(columns=columns)
        selected = ", ".join(c for c in columns if c != "as_of_date")
        return con.execute(
            f"select {selected}, cast(? as date) as as_of_date from marts.dim_products "
            "order by product_id",
            [run_date],
        ).df()


def replace_products(con, run_date: dt.date, products: pd.DataFrame) -> None:
    """Rewrite ``exports.products`` in the caller's transaction, unless a later date was
    published already (a backfill of an earlier date leaves the newer catalogue)."""
    (latest,) = con.execute("select max(as_of_date) from exports.products").fetchone()
    if latest is not None and latest > run_date:
        return
    _replace_whole(con, "products", products)


def replace_live_tables(con, tables: dict[str, pd.DataFrame]) -> None:
    """Rewrite the published live tables whole, in the caller's transaction (publishing)."""
    for export in LIVE_TABLES:
        if export not in tables:
            continue
        _replace_whole(con, export, tables[export])


def _replace_registry_tables(con, perf: pd.DataFrame, registry_rows: pd.DataFrame) -> None:
    """Rebuild the registry-derived tables whole (they are small), in the caller's transaction."""
    for table, frame in (("model_performance", perf), ("model_registry", registry_rows)):
        con.execute(f"create table if not exists exports.{table} ({EXPORT_SCHEMAS[table].ddl()})")
        _replace_whole(con, table, frame)


def _replace_whole(con, table: str, frame: pd.DataFrame) -> None:
    """Replace every row of ``exports.<table>`` with ``frame``'s, in the caller's transaction."""
    columns = ", ".join(frame.columns)
    con.execute(f"delete from exports.{table}")
    con.register("incoming", frame)
    con.execute(f"insert into exports.{table} ({columns}) select {columns} from incoming")
    con.unregister("incoming")


# -- dates a run started for but never published ---------------------------------------------
def _attempts_dir(settings: Settings) -> Path:
    return snapshots.snapshots_dir(settings) / "started"


def record_run_started(settings: Settings, run_date: dt.date) -> None:
    """Note that a nightly run for ``run_date`` started (cleared when the date is published)."""
    folder = _attempts_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / run_date.isoformat()).touch()


def _published_dates(db: Path) -> set[dt.date]:
    import duckdb

    if not db.exists():
        return set()
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            r[0]
            for t in EXPORT_TABLES
            for r in con.execute(f"select distinct run_date from exports.{t}").fetchall()
        }
    except duckdb.CatalogException:
        return set()
    finally:
        con.close()


def unpublished_dates(settings: Settings, *, lock_timeout_s: float = 5.0) -> list[dt.date]:
    """Run dates that a nightly run started for, or that have predictions in the warehouse,
    but that no published snapshot has: a night that never finished publishing.

    Raises :class:`shopflow.warehouse.WarehouseBusyError` when the warehouse stays locked
    longer than ``lock_timeout_s``.
    """
    from shopflow.warehouse import table_exists

    candidates = set()
    if _attempts_dir(settings).is_dir():
        candidates |= {dt.date.fromisoformat(p.name) for p in _attempts_dir(settings).iterdir()}
    if settings.warehouse_path.exists():
        with connect(settings, read_only=True, lock_timeout_s=lock_timeout_s) as con:
            for table in EXPORT_TABLES:
                if table_exists(con, "predictions", table):
                    candidates |= {
                        r[0]
                        for r in con.execute(
                            f"select distinct run_date from predictions.{table}"
                        ).fetchall()
                    }
    return sorted(candidates - _published_dates(settings.published_db_path))


def _clear_attempt(settings: Settings, run_date: dt.date) -> None:
    (_attempts_dir(settings) / run_date.isoformat()).unlink(missing_ok=True)


def publish_registry_tables(settings: Settings) -> None:
    """Rewrite exports.model_performance / model_registry of the published file now.

    Used by the backtest commands so analysts see new results before the next nightly
    publish: a new snapshot like :func:`publish`'s, under the same lock. Without a published
    file there is nothing to update and the next publish exports the rows.
    """
    import duckdb

    if not settings.published_db_path.exists():
        return
    perf, registry_rows = performance_rows(settings)
    with snapshots.publish_lock(settings):
        snapshots.recover(settings)
        with snapshots.new_snapshot(settings, copy={PUBLISHED_DB}) as snapshot:
            con = duckdb.connect(str(snapshot / PUBLISHED_DB))
            try:
                con.execute("begin transaction")
                _replace_registry_tables(con, perf, registry_rows)
                con.execute("commit")
                con.execute("checkpoint")
            finally:
                con.close()


def export_descriptions(settings: Settings | None = None) -> dict[str, dict]:
    """Table -> {"description", "columns": {column: description}} of the exported tables,
    from the dbt docs' YAML (source ``exports``): one text for dbt docs and COMMENT ON."""
    import yaml

    from shopflow.settings import PROJECT_ROOT

    project = settings.dbt_project_dir if settings else PROJECT_ROOT / "dbt_project"
    path = project / "models" / "exports" / "_exports__sources.yml"
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


def comment_on_exports(con, settings: Settings | None = None) -> None:
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
