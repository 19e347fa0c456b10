"""What the fault tests share: homes with predictions, running a step in a subprocess that a
failpoint kills, and reading what analysts see."""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from shopflow.failpoints import ENV as FAILPOINTS_ENV
from tests.conftest import REPO_ROOT, make_settings

PUBLISH = (
    "import datetime as dt, sys\n"
    "from shopflow.settings import load_settings\n"
    "from shopflow.publish import publish\n"
    "publish(load_settings(), dt.date.fromisoformat(sys.argv[1]))\n"
)


def run_python(home: Path, code: str, *args: str, failpoints: str = "", timeout: float = 300):
    """Run ``code`` in a fresh interpreter on ``home``; returns the CompletedProcess."""
    env = {**os.environ, "SHOPFLOW_HOME": str(home), FAILPOINTS_ENV: failpoints}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def publish_in_subprocess(home: Path, run_date: dt.date, failpoints: str = ""):
    return run_python(home, PUBLISH, run_date.isoformat(), failpoints=failpoints)


def mount_tmpfs(path: Path, size: str) -> bool:
    """Mount a ``size`` tmpfs at ``path`` (a small disk to fill); False when not root or the
    mount fails. Unmount it with ``umount -l``."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    return done.returncode == 0


def fill_disk(ballast: Path, leave: int) -> None:
    """Fill the filesystem of ``ballast`` until about ``leave`` bytes stay free."""
    free = shutil.disk_usage(ballast.parent).free
    with open(ballast, "ab") as f:  # adds to a ballast already there
        f.write(b"\0" * max(free - leave, 0))


def copy_home(source: Path, target: Path) -> Path:
    """A copy of a home (symlinks kept as symlinks, so ``exports`` stays relative)."""
    shutil.copytree(source, target, symlinks=True)
    return target


def visible(home: Path) -> dict:
    """What an analyst sees through ``exports/``: rows per table and run date of the DuckDB
    file, the run_date partitions a hive glob over each table's Parquet returns, and the rows."""
    settings = make_settings(home)
    out: dict = {"db": {}, "parquet": {}, "rows": {}}
    if not settings.published_db_path.exists():
        return out
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        for table in ("recommendations", "demand_forecast"):
            out["db"][table] = dict(
                con.execute(
                    f"select run_date::varchar, count(*) from exports.{table} group by 1"
                ).fetchall()
            )
            out["rows"][table] = con.execute(
                f"select * from exports.{table} order by all"
            ).fetchall()
            pattern = str(settings.exports_dir / table / "*" / "*.parquet")
            if glob.glob(pattern):
                frame = duckdb.sql(
                    f"select run_date::varchar as d, count(*) as n from "
                    f"read_parquet('{pattern}', hive_partitioning=true) group by 1"
                ).df()
                out["parquet"][table] = dict(zip(frame["d"], frame["n"].astype(int), strict=True))
            else:
                out["parquet"][table] = {}
    finally:
        con.close()
    return out


def assert_consistent(home: Path) -> dict:
    """The DuckDB file and the Parquet mirror show the same dates with the same row counts."""
    seen = visible(home)
    assert seen["db"] == seen["parquet"], seen
    return seen


def snapshot_dirs(home: Path) -> list[str]:
    root = home / ".snapshots"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a.reset_index(drop=True).equals(b.reset_index(drop=True))
