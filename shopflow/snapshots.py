"""Published snapshots: what analysts read under ``$SHOPFLOW_HOME/exports`` changes in one step.

Layout::

    $SHOPFLOW_HOME/exports -> .snapshots/00000042      (a relative symlink)
    $SHOPFLOW_HOME/.snapshots/00000042/shopflow.duckdb
    $SHOPFLOW_HOME/.snapshots/00000042/<table>/run_date=<D>/part-0.parquet
    $SHOPFLOW_HOME/.snapshots/publish.lock

Why a symlink swap: a publish changes two things analysts read, the DuckDB file and the
Parquet mirror, and no single rename of either makes both change together (renaming
``run_date=D`` folders one table at a time showed a reader D's recommendations without D's
forecasts after a crash between two renames). Here a publish builds a whole new snapshot
directory (the DuckDB file copied and updated, the Parquet of every other date hard-linked,
so it costs the DuckDB file plus the new date's files), and then replaces the one symlink
``exports`` with ``rename(2)`` of a new symlink: atomic on POSIX, so every path that goes
through ``exports/`` resolves to the old snapshot or to the new one, never to a mix, and
never to nothing. Analysts' paths (``exports/shopflow.duckdb``,
``exports/<table>/run_date=*/*.parquet``) keep working, and unfinished snapshots live in the
hidden ``.snapshots`` folder, outside every glob under ``exports/``.

Crashes: the symlink is the only commit point. A snapshot numbered above the one ``exports``
points at was never visible and is removed at the start of the next publish (:func:`recover`),
as is a half-made swap link. Readers that opened files of an older snapshot keep reading
them: the previous :data:`KEEP_PREVIOUS` snapshots are kept, older ones pruned.

A home from before snapshots has a real ``exports/`` directory: the first publish renames it
to snapshot 0 and points ``exports`` at it (the one moment, during that first publish only,
when ``exports`` is briefly absent; a crash there is repaired by :func:`recover`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.failpoints import failpoint
from shopflow.warehouse import file_lock

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

log = logging.getLogger(__name__)

SNAPSHOTS = ".snapshots"
SWAP_LINK = ".exports.swap"
KEEP_PREVIOUS = 2  # older snapshots kept for readers that still hold their files
_NUMBERED = re.compile(r"^\d{8}$")
# files a snapshot never carries over: locks, DuckDB's write-ahead log, old staging leftovers
_SKIP_SUFFIXES = (".lock", ".wal", ".tmp")
_SKIP_PARTS = (".staged", ".old")


def snapshots_dir(settings: Settings) -> Path:
    """``$SHOPFLOW_HOME/.snapshots``: every published snapshot and the publish lock."""
    return settings.home / SNAPSHOTS


def snapshot_name(number: int) -> str:
    return f"{number:08d}"


def numbered(settings: Settings) -> list[int]:
    """Numbers of the snapshot directories on disk, ascending."""
    root = snapshots_dir(settings)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if _NUMBERED.match(p.name) and p.is_dir())


def current_number(settings: Settings) -> int | None:
    """The snapshot ``exports`` points at (None: no snapshot published yet)."""
    link = settings.exports_dir
    if not link.is_symlink():
        return None
    name = Path(os.readlink(link)).name
    return int(name) if _NUMBERED.match(name) else None


def current_dir(settings: Settings) -> Path | None:
    """The directory analysts currently read through ``exports`` (None: nothing published)."""
    number = current_number(settings)
    if number is not None:
        return snapshots_dir(settings) / snapshot_name(number)
    return None


def publish_lock(settings: Settings, *, timeout_s: float = 600.0):
    """The lock every writer of published snapshots holds (publishes, registry-table updates)."""
    return file_lock(snapshots_dir(settings) / "publish.lock", timeout_s=timeout_s)


def recover(settings: Settings) -> list[str]:
    """Repair what a crashed publish left (call under :func:`publish_lock`).

    Removes the half-made swap link and every snapshot numbered above the current one (built
    but never visible); migrates a real ``exports/`` directory from before snapshots to
    snapshot 0. Returns what it did, for the log.
    """
    root = snapshots_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    done = []
    swap = settings.home / SWAP_LINK
    if os.path.lexists(swap):
        swap.unlink()
        done.append(f"removed the unfinished swap link {swap}")
    exports = settings.exports_dir
    if exports.is_symlink() and current_number(settings) is None:
        raise RuntimeError(
            f"{exports} points at {os.readlink(exports)}, not at a snapshot under {root}; "
            "publishing would not know which exports to keep. Point it back at the latest "
            f"{root}/<n> folder (or remove it to start afresh), then rerun."
        )
    if exports.is_dir() and not exports.is_symlink():
        done += _migrate(settings)
    current = current_number(settings)
    if current is None and set(numbered(settings)) - {0, 1}:
        # only a crash in a home's first publish leaves snapshots without exports: 0 (the
        # migrated folder) and 1 (never shown); more means exports was removed by hand
        raise RuntimeError(
            f"{exports} is missing but {root} holds published snapshots; point it at the "
            f"latest: ln -sfn {SNAPSHOTS}/{snapshot_name(max(numbered(settings)))} {exports}"
        )
    if current is None and (root / snapshot_name(0)).is_dir():
        # a crash between the two steps of the migration: snapshot 0 is the old exports/
        current = 0
        _point_exports_at(settings, 0)
        done.append("pointed exports at snapshot 0 (the migrated exports/ directory)")
    for number in numbered(settings):
        if current is None or number > current:
            shutil.rmtree(root / snapshot_name(number))
            done.append(f"removed snapshot {snapshot_name(number)}, built but never published")
    for line in done:
        log.warning("publish recovery: %s", line)
    return done


def _migrate(settings: Settings) -> list[str]:
    """Turn a real ``exports/`` directory (homes from before snapshots) into snapshot 0."""
    exports = settings.exports_dir
    target = snapshots_dir(settings) / snapshot_name(0)
    if target.exists():  # cannot happen unless someone recreated exports/ by hand
        target = snapshots_dir(settings) / snapshot_name(max(numbered(settings)) + 1)
    has_content = any(exports.iterdir())
    os.rename(exports, target)
    failpoint("snapshots.migrate_between_renames")
    for path in sorted(target.rglob("*"), reverse=True):  # staging leftovers of the old publish
        if any(path.name.endswith(part) for part in _SKIP_PARTS):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    _point_exports_at(settings, int(target.name))
    return [f"moved the exports/ directory to {target}"] if has_content else []


def _point_exports_at(settings: Settings, number: int) -> None:
    """Make ``exports`` point at snapshot ``number`` with one atomic rename."""
    swap = settings.home / SWAP_LINK
    if os.path.lexists(swap):
        swap.unlink()
    os.symlink(f"{SNAPSHOTS}/{snapshot_name(number)}", swap, target_is_directory=True)
    failpoint("publish.before_swap")
    os.replace(swap, settings.exports_dir)
    _fsync_dir(settings.home)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:  # another filesystem, or links not allowed: a copy is as good
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(source, target)


def _carry_over(source: Path, target: Path, *, copy: set[str], skip_dirs: set[str]) -> None:
    """Fill ``target`` from snapshot ``source``: files named in ``copy`` (relative paths) are
    copied (they will be modified), folders in ``skip_dirs`` left out, the rest hard-linked."""
    for dirpath, dirnames, filenames in os.walk(source):
        rel_dir = Path(dirpath).relative_to(source)
        dirnames[:] = [
            d for d in dirnames if str(rel_dir / d) not in skip_dirs and not d.endswith(_SKIP_PARTS)
        ]
        (target / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            rel = rel_dir / name
            if name.endswith(_SKIP_SUFFIXES) or name.endswith(_SKIP_PARTS):
                continue
            if str(rel) in copy:
                shutil.copyfile(source / rel, target / rel)
            else:
                _link_or_copy(source / rel, target / rel)


@contextlib.contextmanager
def new_snapshot(
    settings: Settings,
    *,
    copy: set[str],
    skip_dirs: set[str] = frozenset(),
    carry_over: bool = True,
) -> Iterator[Path]:
    """Build the next snapshot in the body of the ``with``, then publish it in one step.

    Call under :func:`publish_lock`, after :func:`recover`. The new directory starts as the
    current snapshot (``copy`` relative paths copied, ``skip_dirs`` left out, the rest
    hard-linked; ``carry_over=False``: it starts empty); when the body raises, it is removed
    and nothing changed for readers. When the body returns, ``exports`` is switched to it and
    old snapshots are pruned.
    """
    root = snapshots_dir(settings)
    current = current_number(settings)
    number = max([current or 0, *numbered(settings)]) + 1
    target = root / snapshot_name(number)
    target.mkdir(parents=True)
    try:
        source = current_dir(settings)
        if carry_over and source is not None and source.is_dir():
            _carry_over(source, target, copy=copy, skip_dirs=skip_dirs)
        yield target
        failpoint("publish.snapshot_built")
        _fsync_dir(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    _point_exports_at(settings, number)
    failpoint("publish.after_swap")
    prune(settings)


def prune(settings: Settings, keep_previous: int = KEEP_PREVIOUS) -> list[int]:
    """Remove snapshots older than the current one and its ``keep_previous`` predecessors."""
    current = current_number(settings)
    if current is None:
        return []
    old = [n for n in numbered(settings) if n < current][: -keep_previous or None]
    for number in old:
        shutil.rmtree(snapshots_dir(settings) / snapshot_name(number), ignore_errors=True)
    return old
