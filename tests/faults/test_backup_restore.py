"""Backups and restores: a restored home at another path serves its own state and refuses a
corrupted artifact; a backup waits for a writer holding the night's locks."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from shopflow import backup, cli, publish
from shopflow.registry import ArtifactIntegrityError, Registry
from shopflow.warehouse import warehouse_lock
from tests.conftest import make_settings
from tests.faults.helpers import assert_consistent, visible
from tests.shopflow.test_publish import _predict
from tests.shopflow.test_registry import _register

pytestmark = pytest.mark.faults

DAY = dt.date(2025, 3, 1)


@pytest.fixture
def home(settings, tmp_path):
    _predict(settings, DAY)
    publish.publish(settings, DAY)
    _register(Registry(settings), tmp_path, b"model")
    (settings.quality_dir / "result.json").write_text("{}")
    return settings


def test_restore_at_another_path_uses_its_own_files(home, tmp_path, capsys, monkeypatch):
    target = tmp_path / "backup"
    monkeypatch.setenv("SHOPFLOW_HOME", str(home.home))
    assert cli.main(["backup", str(target)]) == 0
    restored = make_settings(tmp_path / "restored")
    monkeypatch.setenv("SHOPFLOW_HOME", str(restored.home))
    assert cli.main(["restore", str(target)]) == 0
    assert visible(restored.home) == visible(home.home)
    assert_consistent(restored.home)
    assert (restored.quality_dir / "result.json").exists()
    [version] = Registry(restored).versions()
    assert version.artifact_dir.is_relative_to(restored.home)
    # the original home's artifact changing does not matter to the restored one ...
    [original] = Registry(home).versions()
    (original.artifact_dir / "model.ubj").write_bytes(b"changed in the original home")
    assert Registry(restored).verified_artifact_dir(version) == version.artifact_dir
    # ... and its own corrupted artifact is refused
    (version.artifact_dir / "model.ubj").write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="refusing to score with it"):
        Registry(restored).verified_artifact_dir(version)


def test_restore_names_a_corrupted_artifact_in_the_backup(home, tmp_path):
    target = tmp_path / "backup"
    backup.backup(home, target)
    [model] = (target / "models" / "demand_forecast").iterdir()
    size = (model / "model.ubj").stat().st_size
    (model / "model.ubj").write_bytes(b"x" * size)  # bit rot: same size, other bytes
    result = backup.restore(make_settings(tmp_path / "restored"), target)
    assert len(result["corrupted"]) == 1
    assert "does not match the registered" in result["corrupted"][0]


def test_a_backup_waits_for_the_writer_holding_the_night_lock(home, tmp_path):
    released = []

    def writer():
        with warehouse_lock(home):
            time.sleep(1.5)
            released.append(time.monotonic())

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.3)
    backup.backup(home, tmp_path / "backup")
    done = time.monotonic()
    thread.join()
    assert released and done >= released[0]
