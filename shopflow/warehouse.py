"""Access to Shopflow's DuckDB files, one writer at a time.

DuckDB allows one read-write process per database file. Shopflow guarantees it in three
layers, from coarse to fine:

1. Airflow: every task that opens the warehouse runs in the ``shopflow_warehouse`` pool (one
   slot) and the DAGs set ``max_active_runs=1``, so the scheduler never starts two such tasks.
2. This module: :func:`connect` takes an exclusive ``fcntl`` lock on ``<db>.lock`` for as long
   as the connection is open; a second writer (a CLI call, a test, a task outside the pool)
   waits up to ``lock_timeout_s`` and then fails with a message naming the holder.
3. Connections are short-lived: opened by one step, closed when it ends (context manager),
   and never held while dbt (a separate process) works on the same file.

Analysts never open the warehouse: they read the published database, which :mod:`publish`
replaces atomically (see there).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    import duckdb

    from shopflow.settings import Settings

# the Airflow pool of layer 1: one slot, so tasks touching the warehouse never run together
WAREHOUSE_POOL = "shopflow_warehouse"


class WarehouseBusyError(RuntimeError):
    """Another process holds the write lock of a DuckDB file."""


@contextlib.contextmanager
def file_lock(path: Path, *, timeout_s: float = 600.0, poll_s: float = 0.2) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - closed in finally
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise WarehouseBusyError(
                        f"{path.with_suffix('')} is being written by another process ({holder}); "
                        f"waited {timeout_s:.0f} s. Let it finish, or stop it, then rerun."
                    ) from exc
                time.sleep(poll_s)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _configure(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit}'")
    con.execute(f"SET threads = {int(settings.duckdb_threads)}")
    con.execute(f"SET temp_directory = '{settings.tmp_dir}'")


@contextlib.contextmanager
def connect(
    settings: Settings,
    path: Path | None = None,
    *,
    read_only: bool = False,
    lock_timeout_s: float = 600.0,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a DuckDB file (the warehouse by default) under its write lock.

    Read-only connections take the same lock: DuckDB refuses a reader while another process
    writes, so readers queue behind writers instead of failing.
    """
    import duckdb

    path = path or settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(path.suffix + ".lock"), timeout_s=lock_timeout_s):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:  # e.g. an analyst's process holds the file: say who
            from shopflow.machine import explain

            plain = explain(exc, path)
            if plain is not None:
                raise plain from exc
            raise
        try:
            _configure(con, settings)
            yield con
        finally:
            con.close()


def warehouse_lock(settings: Settings, *, timeout_s: float = 600.0):
    """The warehouse's write lock, for steps that let another process (dbt) write the file."""
    path = settings.warehouse_path
    return file_lock(path.with_suffix(path.suffix + ".lock"), timeout_s=timeout_s)


def features_built_as_of(
    settings: Settings, table: str = "feat_customer_product", column: str = "cutoff_date"
) -> dt.date | None:
    """The last ``column`` date in the warehouse's ``features.<table>``: the business date the
    features were last built for. None when there is no warehouse file, no such table yet, or
    no rows."""
    if not settings.warehouse_path.exists():
        return None
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "features", table):
            return None
        row = con.execute(f"select max({column}) from features.{table}").fetchone()
    return row[0] if row else None


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """True when ``schema.table`` exists (a table or a view) in the connected database."""
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])
