"""The disk under the warehouse fills during a night's dbt build (the free-space estimate was
met, the build wrote more): the task fails at once saying disk full, the path, the free space
and what the build needed; the published exports do not change; DuckDB's write-ahead log,
when it is left, is named as work to keep, and the rerun after freeing space replays it and
converges to the warehouse of a clean build."""

from __future__ import annotations

import shutil
import subprocess

import duckdb
import pytest
from airflow.sdk.exceptions import AirflowFailException

from shopflow import dbt, machine, publish
from shopflow.jobs import steps
from tests.faults.helpers import fill_disk, mount_tmpfs, visible
from tests.faults.night import run_night
from tests.ml.lifecycle_helpers import copy_home
from tests.shopflow.test_publish import _predict

pytestmark = pytest.mark.faults

# free space left on the warehouse's disk: one DuckDB block, less than a build writes
LEFT = 256 << 10


def _warehouse_rows(settings) -> dict[str, int]:
    """Rows of every table dbt builds (staging views aside)."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema in ('marts', 'features')"
        ).fetchall()
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for (t,) in tables}
    finally:
        con.close()


@pytest.fixture
def home(built_home, tmp_path, monkeypatch):
    """A copy of the built tiny shop with its date built and published, the warehouse on a
    small tmpfs."""
    settings, day = copy_home(built_home, tmp_path)
    _predict(settings, day)
    publish.publish(settings, day)
    dbt.build_warehouse(settings, day)  # a clean night's build: the rows a rerun converges to
    mount = tmp_path / "disk"
    size = settings.warehouse_path.stat().st_size
    if not mount_tmpfs(mount, str(size + (32 << 20))):
        pytest.skip("needs root and a working `mount -t tmpfs` to fill a small disk")
    try:
        shutil.move(settings.warehouse_dir, mount / "warehouse")
        settings.warehouse_dir.symlink_to(mount / "warehouse")
        monkeypatch.setenv("SHOPFLOW_HOME", str(settings.home))
        yield settings, day, mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_during_the_dbt_build_is_said_plainly_and_the_rerun_converges(
    home, monkeypatch, capsys
):
    settings, day, mount = home
    published, rows = visible(settings.home), _warehouse_rows(settings)
    # the estimate before the build is met, then another writer fills the disk
    monkeypatch.setattr(dbt, "MIN_FREE_BYTES", 0)
    needed = dbt.free_space_needed(settings)
    ballast = mount / "ballast"
    check = dbt._check_free_space

    def check_then_fill(settings):
        check(settings)
        fill_disk(ballast, LEFT)

    monkeypatch.setattr(dbt, "_check_free_space", check_then_fill)

    with pytest.raises(AirflowFailException) as failed:  # the task, as Airflow runs it
        steps.run_step("build_warehouse", day.isoformat())
    message = str(failed.value)
    first = "\n".join(message.splitlines()[:3])
    assert "disk is full" in first, message
    assert str(settings.warehouse_dir) in first
    assert " free" in first and f"the dbt build needs about {machine._size(needed)}" in first
    assert "See the log" not in first
    # the whole summary reached stderr too (the task log may be on the same full disk)
    assert message in capsys.readouterr().err

    # the in-process night on the still full disk: the check stops the build before dbt
    # starts, and the night's summary says the cause first, then the steps' states
    with pytest.raises(machine.DiskFullError):
        run_night(settings, day, start="build_warehouse")
    summary = capsys.readouterr().err.splitlines()
    assert summary[0].startswith(f"night {day} failed at build_warehouse: not enough disk space")
    assert str(settings.warehouse_dir) in summary[0] and " free" in summary[0]
    assert f"needs about {machine._size(dbt.free_space_needed(settings))}" in summary[0]
    assert summary[1] == "  build_warehouse: failed", summary
    after = list(steps.NIGHTLY_STEPS)[list(steps.NIGHTLY_STEPS).index("build_warehouse") + 1 :]
    assert summary[2:] == [f"  {name}: not run" for name in after], summary

    assert visible(settings.home) == published  # exports untouched
    wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
    strays = sorted(p.name for p in settings.warehouse_dir.iterdir() if p.suffix == ".wal")
    assert strays in ([], [wal.name]), strays
    if strays:  # committed work DuckDB replays on the next open: named, to keep
        assert str(wal) in message and "keep it" in message

    ballast.unlink()
    monkeypatch.setattr(dbt, "_check_free_space", check)
    steps.build_warehouse(settings, day)  # the rerun (Airflow's clear) once space is free
    assert not wal.exists()
    assert _warehouse_rows(settings) == rows
    assert visible(settings.home) == published
