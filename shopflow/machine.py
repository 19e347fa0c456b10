"""Machine errors said plainly: a full disk, a file held by another process, a denied path.

These are not data errors and not worth retrying blindly: a full disk stays full and an
analyst's open file stays open. Each error says which path, what the step needed or who
holds it (PID and command line, read from ``/proc/*/fd`` or from DuckDB's own message), and
what to do. Light on purpose (no heavy imports): steps and the CLI import it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path


class MachineError(RuntimeError):
    """The machine, not the data, stopped a step: fail at once with what to do."""


class DiskFullError(MachineError):
    """Not enough free space where a step writes."""


class FileHeldError(MachineError):
    """Another process holds a file a step must write."""


class PermissionDeniedError(MachineError):
    """The step's user may not write a path."""


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem of ``path`` (its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def require_free_space(path: Path, needed: int, what: str) -> None:
    """Raise :class:`DiskFullError` unless ``needed`` bytes are free where ``path`` lives."""
    free = free_bytes(path)
    if free < needed:
        raise DiskFullError(
            f"not enough disk space for {what}: {_size(free)} free on the filesystem of {path}, "
            f"the step needs about {_size(needed)}. Free space there (old files under "
            f"{Path(path).parent}/tmp, old backups), then rerun; nothing was changed."
        )


# below this much free space a disk is as good as full for a night's logs and builds
NEARLY_FULL_BYTES = 64 * 1024 * 1024


def nearly_full(path: Path, what: str, below: int = NEARLY_FULL_BYTES) -> str | None:
    """A sentence saying the disk of ``path`` (where ``what``) is full, or None when it has
    ``below`` bytes free or more (or cannot be measured)."""
    try:
        free = free_bytes(path)
    except OSError:
        return None
    if free >= below:
        return None
    return (
        f"the disk is full: {_size(free)} free on the filesystem of {path}, where {what}; "
        "free space there, then clear the failed task"
    )


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None


def holders(path: Path) -> list[tuple[int, str]]:
    """Processes (PID, command line) that have ``path`` open, from ``/proc/*/fd``."""
    target = os.path.realpath(path)
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    found.append((int(proc.name), cmd or "?"))
                    break
            except OSError:
                continue
    return found


# DuckDB: 'Could not set lock on file "/x.duckdb": Conflicting lock is held in /usr/bin/python3
# (PID 1234) by user root.'
_DUCKDB_LOCK = re.compile(r'Could not set lock on file "([^"]+)".*?held in (.+?) \(PID (\d+)\)')


def held_file_error(path: Path, holder_text: str | None = None) -> FileHeldError:
    """A :class:`FileHeldError` naming who holds ``path`` (DuckDB's message, else /proc)."""
    match = _DUCKDB_LOCK.search(holder_text or "")
    if match:  # DuckDB names the executable; /proc has the whole command line
        pid = int(match.group(3))
        who = [(pid, _cmdline(pid) or match.group(2))]
    else:
        who = holders(path)
    named = "; ".join(f"PID {pid}: {cmd}" for pid, cmd in who) or "a process not visible here"
    return FileHeldError(
        f"{path} is held open by another process ({named}), so this step cannot write it. "
        "Analysts read exports/shopflow.duckdb, never the warehouse: ask its owner to close it "
        f"(or `kill {who[0][0] if who else '<PID>'}` if it is abandoned), then rerun."
    )


def explain(
    exc: BaseException,
    path: Path | None = None,
    *,
    needed: int | None = None,
    what: str | None = None,
) -> MachineError | None:
    """The plain machine error behind ``exc`` (an OSError or a library's error text), or
    None when it is not one. ``needed`` bytes for ``what`` (a step) go into a full disk's
    message, so that it says how much to free."""
    if isinstance(exc, MachineError):  # already said plainly
        return exc
    text = str(exc)
    number = getattr(exc, "errno", None)
    where = getattr(exc, "filename", None) or path
    if number == errno.ENOSPC or "No space left on device" in text:
        free = f"{_size(free_bytes(Path(where)))} free" if where else "free space unknown"
        need = f", {what or 'the step'} needs about {_size(needed)}" if needed else ""
        return DiskFullError(
            f"the disk is full writing {where or 'a file'} ({free}{need}): "
            f"{text.strip()[:300]}. Free space there, then rerun; published exports were "
            "not changed."
        )
    if "Could not set lock on file" in text:
        match = _DUCKDB_LOCK.search(text)
        return held_file_error(Path(match.group(1)) if match else Path(where or "?"), text)
    if number in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return PermissionDeniedError(
            f"permission denied on {where or 'a file'} ({text.strip()[:200]}): the step runs "
            f"as uid {os.getuid()}; give that user write access to it (chown/chmod), then rerun."
        )
    return None
