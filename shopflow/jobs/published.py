"""Reading what the nightly run published (``$SHOPFLOW_HOME/exports/shopflow.duckdb``).

The published file is replaced atomically and never written in place: a plain read-only
connection sees one consistent version and needs no lock.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd


def _published(settings, db: Path | None = None) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(db or settings.published_db_path), read_only=True)


def published_run_dates(settings) -> list[dt.date]:
    """Business dates the nightly run has published, oldest first."""
    path = settings.published_db_path
    if not path.exists():
        return []
    con = _published(settings)
    try:
        rows = con.execute(
            "select distinct run_date from exports.demand_forecast "
            "intersect select distinct run_date from exports.recommendations order by 1"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    finally:
        con.close()
    return [r[0] for r in rows]


def previous_run_date(settings, run_date: dt.date, db: Path | None = None) -> dt.date | None:
    """The latest published run date before ``run_date`` (None: there is none); ``db``: read
    that published file instead (a snapshot not yet visible)."""
    if not (db or settings.published_db_path).exists():
        return None
    con = _published(settings, db)
    try:
        row = con.execute(
            "select max(run_date) from exports.demand_forecast where run_date < ?", [run_date]
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def published_rows(settings, table: str, run_date: dt.date, db: Path | None = None) -> pd.DataFrame:
    """The published rows of ``exports.<table>`` for ``run_date`` (none on a new home);
    ``db``: read that published file instead (a snapshot not yet visible)."""
    if not (db or settings.published_db_path).exists():  # a new home's first night
        return pd.DataFrame({"model_version": pd.Series([], dtype="object")})
    con = _published(settings, db)
    try:
        return con.execute(f"select * from exports.{table} where run_date = ?", [run_date]).df()
    finally:
        con.close()
