"""``shopflow backup PATH`` / ``shopflow restore PATH``: a home's state, copied consistently.

A backup holds what a home cannot rebuild from its landing files alone: the warehouse
(``warehouse/``, with the ingest manifest and the predictions), the model registry and its
artifacts (``models/``), the published exports (the current snapshot, as ``exports/``) and
the quality results (``quality/``). The landing zone is the shop's own input and is not
copied; neither are Airflow's state, logs and scratch space.

Consistency: both commands hold the locks the night's writers take, in one order (the
publish lock, the warehouse's, the registry's), so no step writes any of these files while
they are copied; a step that wants one waits. Between two tasks of a night no lock is held,
so a backup taken while a night runs can fall between its steps: stop the scheduler or pick
a quiet time (a restored home converges by rerunning that night).

Restoring at another path works because the registry records artifact folders relative to
the home; ``restore`` then verifies every version's checksum and names the corrupted ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow import snapshots
from shopflow.warehouse import file_lock, warehouse_lock

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

MANIFEST = "shopflow-backup.json"
PARTS = ("warehouse", "models", "quality")
_SKIP = (".lock", ".wal", ".tmp")


@contextlib.contextmanager
def _night_locks(settings: Settings, timeout_s: float):
    """The locks of every writer of the backed-up files, in the order a publish takes them
    (it reads the warehouse and the registry while holding the publish lock), so that a
    backup and a publish never wait for each other in a circle."""
    registry = settings.registry_path
    with (
        snapshots.publish_lock(settings, timeout_s=timeout_s),
        warehouse_lock(settings, timeout_s=timeout_s),
        file_lock(registry.with_suffix(registry.suffix + ".lock"), timeout_s=timeout_s),
    ):
        yield


def _copy_tree(source: Path, target: Path) -> dict[str, int]:
    """Copy ``source`` to ``target`` (no locks or write-ahead logs); relative path -> size."""
    files = {}
    for dirpath, _, filenames in os.walk(source):
        for name in filenames:
            if name.endswith(_SKIP):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(source)
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)
            files[rel.as_posix()] = path.stat().st_size
    return files


def backup(settings: Settings, path: Path, *, timeout_s: float = 600.0) -> dict:
    """Copy the home's state to the new folder ``path``; returns the manifest."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"{path} exists and is not empty; back up into a new folder")
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    manifest: dict = {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "home": str(settings.home),
        "files": {},
    }
    with _night_locks(settings, timeout_s):
        for part in PARTS:
            source = settings.home / part
            if source.is_dir():
                manifest["files"][part] = _copy_tree(source, partial / part)
        current = snapshots.current_dir(settings)
        if current is None and settings.exports_dir.is_dir():  # not yet migrated
            current = settings.exports_dir
        if current is not None:
            manifest["files"]["exports"] = _copy_tree(current, partial / "exports")
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if path.exists():
        path.rmdir()
    os.replace(partial, path)  # a backup folder is whole or absent
    return manifest


def restore(settings: Settings, path: Path, *, timeout_s: float = 600.0) -> dict:
    """Replace the home's state by the backup in ``path``; returns what was restored and the
    model versions whose artifacts fail their checksum (scoring refuses those)."""
    from shopflow.registry import ArtifactIntegrityError, Registry

    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{path} is not a Shopflow backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    for part, files in manifest["files"].items():
        for rel, size in files.items():
            copied = path / part / rel
            if not copied.is_file() or copied.stat().st_size != size:
                raise ValueError(f"backup {path} is incomplete: {part}/{rel} missing or resized")
    settings.home.mkdir(parents=True, exist_ok=True)
    with _night_locks(settings, timeout_s):
        for part in PARTS:
            target = settings.home / part
            if target.is_dir():
                for child in target.iterdir():  # keep the lock files the night holds
                    if not child.name.endswith(".lock"):
                        shutil.rmtree(child) if child.is_dir() else child.unlink()
            if part in manifest["files"]:
                _copy_tree(path / part, target)
        if "exports" in manifest["files"]:
            _restore_exports(settings, path / "exports")
    corrupted = []
    registry = Registry(settings)
    for version in registry.versions():
        try:
            registry.verified_artifact_dir(version)
        except ArtifactIntegrityError as exc:
            corrupted.append(str(exc))
    return {"restored": sorted(manifest["files"]), "from": str(path), "corrupted": corrupted}


def _restore_exports(settings: Settings, source: Path) -> None:
    """Publish the backed-up exports as a new snapshot (under the publish lock, held)."""
    snapshots.recover(settings)
    with snapshots.new_snapshot(settings, copy=set(), carry_over=False) as snapshot:
        _copy_tree(source, snapshot)
