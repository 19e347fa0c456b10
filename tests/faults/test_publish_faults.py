"""Publishing under faults: kill -9 at every step of a publish, a full disk, readers holding
the published files, two publishes at once. Each asserts that what analysts see is the old
snapshot or the new date whole, and that a plain rerun converges to a clean run."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from shopflow import cli, publish
from shopflow.machine import DiskFullError
from tests.conftest import REPO_ROOT, make_settings
from tests.faults.helpers import (
    PUBLISH,
    assert_consistent,
    copy_home,
    mount_tmpfs,
    publish_in_subprocess,
    snapshot_dirs,
    visible,
)
from tests.shopflow.test_publish import _predict

pytestmark = pytest.mark.faults

D1 = dt.date(2025, 3, 1)
D2 = D1 + dt.timedelta(days=1)
D3 = D2 + dt.timedelta(days=1)

# every point of a publish where a kill leaves a different state on disk
PUBLISH_FAILPOINTS = [
    "publish.parquet_written",  # after the first table's Parquet, before the second
    "publish.snapshot_built",  # everything staged, nothing visible
    "publish.before_swap",  # the new symlink made, not yet renamed over exports
    "publish.after_swap",  # visible, old snapshots not pruned
]


@pytest.fixture(scope="module")
def homes(tmp_path_factory) -> dict[str, Path]:
    """``base``: D1 published, D2 and D3 predicted; ``clean``: the same with D2 published."""
    root = tmp_path_factory.mktemp("publish_faults")
    base = root / "base"
    settings = make_settings(base)
    settings.ensure_dirs()
    _predict(settings, D1)
    publish.publish(settings, D1)
    _predict(settings, D2)
    _predict(settings, D3)
    clean = copy_home(base, root / "clean")
    publish.publish(make_settings(clean), D2)
    return {"base": base, "clean": clean, "root": root}


@pytest.mark.parametrize("point", PUBLISH_FAILPOINTS)
def test_kill_during_publish_shows_old_or_whole_new_and_rerun_converges(
    homes, point, tmp_path, capsys
):
    home = copy_home(homes["base"], tmp_path / "home")
    before = visible(homes["base"])
    result = publish_in_subprocess(home, D2, failpoints=point)
    assert result.returncode == -9, result.stderr  # the failpoint fired
    seen = assert_consistent(home)
    assert seen == before or seen == visible(homes["clean"])
    if point != "publish.after_swap":
        assert seen == before, f"killed at {point}, before the swap: nothing may change"
        # the date that never got published is reported (shopflow status, next night's log)
        assert D2 in publish.unpublished_dates(make_settings(home))
        cli._print_unpublished(make_settings(home))
        assert f"NOT PUBLISHED: {D2}" in capsys.readouterr().out
    # a plain rerun converges to the clean run, and cleans what the crash left
    publish.publish(make_settings(home), D2)
    assert visible(home) == visible(homes["clean"])
    assert len(snapshot_dirs(home)) <= 1 + publish.snapshots.KEEP_PREVIOUS
    assert not (home / ".exports.swap").exists()
    assert D2 not in publish.unpublished_dates(make_settings(home))


def test_kill_during_migration_of_an_old_exports_directory(tmp_path):
    """A home from before snapshots: exports/ is a real folder with a staging leftover."""
    home = tmp_path / "home"
    settings = make_settings(home)
    settings.ensure_dirs()
    _predict(settings, D1)
    _predict(settings, D2)
    publish.publish(settings, D1)
    legacy = settings.exports_dir.resolve()
    settings.exports_dir.unlink()
    shutil.move(legacy, settings.exports_dir)  # the old layout: a real directory
    shutil.rmtree(home / ".snapshots")
    (settings.exports_dir / "recommendations" / f"run_date={D2}.staged").mkdir()
    before = visible(home)
    result = publish_in_subprocess(home, D2, failpoints="snapshots.migrate_between_renames")
    assert result.returncode == -9, result.stderr
    publish.publish(settings, D2)
    assert settings.exports_dir.is_symlink()
    seen = assert_consistent(home)
    assert set(seen["db"]["recommendations"]) == {str(D1), str(D2)}
    assert seen["rows"]["recommendations"][:30] == before["rows"]["recommendations"]


def test_full_disk_during_publish_changes_nothing_and_rerun_converges(homes, tmp_path):
    mount = tmp_path / "disk"
    if not mount_tmpfs(mount, "64m"):
        pytest.skip("needs root and a working `mount -t tmpfs` to fill a small disk")
    try:
        home = copy_home(homes["base"], mount / "home")
        before = visible(home)
        ballast = mount / "ballast"
        free = shutil.disk_usage(mount).free
        # leave less room than a copy of the published DuckDB file needs
        need = (home / "exports" / "shopflow.duckdb").stat().st_size
        with open(ballast, "wb") as f:
            f.truncate(0)
            f.write(b"\0" * max(free - need // 2, 0))
        with pytest.raises((OSError, DiskFullError)) as failure:
            publish.publish(make_settings(home), D2)
        assert "disk" in str(failure.value)
        assert visible(home) == before
        assert snapshot_dirs(home) == snapshot_dirs(homes["base"])
        ballast.unlink()
        publish.publish(make_settings(home), D2)
        assert visible(home) == visible(homes["clean"])
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


READER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
parquet = open(sys.argv[2], "rb")
first = con.execute("select count(*) from exports.recommendations").fetchone()[0]
print(first, flush=True)
sys.stdin.readline()  # hold both files until told
again = con.execute("select count(*) from exports.recommendations").fetchone()[0]
print(again, len(parquet.read()) > 0, flush=True)
"""


def test_reader_holding_the_published_files_does_not_block_a_publish(homes, tmp_path):
    home = copy_home(homes["base"], tmp_path / "home")
    settings = make_settings(home)
    parquet = next((settings.exports_dir / "recommendations").rglob("*.parquet"))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(settings.published_db_path), str(parquet)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().split() == ["30"]
        started = time.monotonic()
        publish.publish(settings, D2)
        assert time.monotonic() - started < 60
        # the reader still sees the version it opened, whole
        out, _ = reader.communicate("\n", timeout=60)
        assert out.split() == ["30", "True"]
    finally:
        reader.kill()
    assert visible(home) == visible(homes["clean"])


def test_two_publishes_at_once_both_land_whole(homes, tmp_path):
    home = copy_home(homes["base"], tmp_path / "home")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISH, d],
            cwd=REPO_ROOT,
            env={**os.environ, "SHOPFLOW_HOME": str(home)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in (D2.isoformat(), D3.isoformat())
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    seen = assert_consistent(home)
    assert set(seen["db"]["recommendations"]) == {str(D1), str(D2), str(D3)}
    con = duckdb.connect(str(make_settings(home).published_db_path), read_only=True)
    try:
        keys = con.execute(
            "select count(*) = count(distinct (run_date, customer_id, rank)) "
            "from exports.recommendations"
        ).fetchone()[0]
    finally:
        con.close()
    assert keys
