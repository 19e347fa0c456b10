"""The landing contract: what a shop hands over, and how partitions are found.

Layout: ``$SHOPFLOW_HOME/landing/<entity>/<YYYY-MM-DD>/*.parquet|*.csv[.gz|.zst]`` (see
docs/design.md, "Landing contract"). Writers (the demo generator, source adapters) use
:func:`write_partition`, which writes the completion marker ``_SUCCESS`` after the data: a
partition is complete when its marker exists, and the nightly run for date D waits for D's
``order_lines`` marker (:func:`is_complete`). The ingest step uses :func:`list_partitions`,
which never returns a partition dated after the run date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

# entity -> ordered (column, logical type). Logical types map onto DuckDB types at ingest.
CONTRACT: dict[str, dict[str, str]] = {
    "order_lines": {
        "order_id": "VARCHAR",
        "line_number": "INTEGER",
        "ordered_at": "TIMESTAMP",
        "customer_id": "VARCHAR",
        "product_id": "VARCHAR",
        "quantity": "INTEGER",
        "unit_price": "DECIMAL(18,4)",
        "currency": "VARCHAR",
        "country": "VARCHAR",
    },
    "products": {
        "product_id": "VARCHAR",
        "name": "VARCHAR",
        "category": "VARCHAR",
        "list_price": "DECIMAL(18,4)",
        "first_available_at": "TIMESTAMP",
    },
    "customers": {
        "customer_id": "VARCHAR",
        "created_at": "TIMESTAMP",
        "country": "VARCHAR",
    },
}
REQUIRED_ENTITIES = ("order_lines",)
DATA_SUFFIXES = (".parquet", ".csv")
# CSV may arrive compressed; read like plain CSV (shopflow.ingest.reading)
COMPRESSED_CSV_ENDINGS = (".csv.gz", ".csv.zst")


def is_data_file(path: Path) -> bool:
    """A landing data file: Parquet, CSV, or CSV compressed with gzip or zstd."""
    name = path.name.lower()
    return path.suffix.lower() in DATA_SUFFIXES or name.endswith(COMPRESSED_CSV_ENDINGS)


# written last into a partition folder: the writer has finished (no data suffix, so never read)
COMPLETE_MARKER = "_SUCCESS"
# A file changed this recently may still change within the same tick of the file system's
# clock without its times moving (see Partition.stat_signature).
STAT_SETTLE_NS = 2_000_000_000


@dataclass(frozen=True)
class Partition:
    """One landing folder: an entity's data for one business date."""

    entity: str
    partition_date: dt.date
    path: Path

    @property
    def files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.is_file() and is_data_file(p))

    def fingerprint(self) -> str:
        """SHA-256 over file names and contents: changes whenever the partition changes."""
        digest = hashlib.sha256()
        for file in self.files:
            digest.update(file.name.encode())
            digest.update(b"\0")
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            digest.update(b"\0")
        return digest.hexdigest()

    def stat_signature(self) -> str | None:
        """SHA-256 over every file's name, size, modification and status-change times and
        inode: equal to the signature taken when the partition was last fingerprinted only if
        no file was added, removed, replaced or written since (any write or rename sets the
        status-change time, which, unlike the modification time, cannot be set back).

        None while a file changed less than STAT_SETTLE_NS ago: file times move in clock
        ticks, so a write in the same tick as this call could leave them as they are.
        """
        digest = hashlib.sha256()
        settled = time.time_ns() - STAT_SETTLE_NS
        for file in self.files:
            stat = file.stat()
            if max(stat.st_mtime_ns, stat.st_ctime_ns) >= settled:
                return None
            fields = (file.name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
            digest.update("\0".join(str(f) for f in fields).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def partition_dir(landing_dir: Path, entity: str, partition_date: dt.date) -> Path:
    return landing_dir / entity / partition_date.isoformat()


def marker_path(landing_dir: Path, entity: str, partition_date: dt.date) -> Path:
    """Where the completion marker of one partition lives."""
    return partition_dir(landing_dir, entity, partition_date) / COMPLETE_MARKER


def is_complete(landing_dir: Path, entity: str, partition_date: dt.date) -> bool:
    """True when the partition's writer has finished: its completion marker exists."""
    return marker_path(landing_dir, entity, partition_date).is_file()


def mark_complete(landing_dir: Path, entity: str, partition_date: dt.date) -> Path:
    """Write the completion marker of a partition whose files are all written."""
    marker = marker_path(landing_dir, entity, partition_date)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return marker


def list_partitions(landing_dir: Path, entity: str, up_to: dt.date) -> list[Partition]:
    """Partitions of ``entity`` dated on or before ``up_to``, oldest first.

    Folders whose name is not a date are ignored; folders dated after ``up_to`` are never
    returned, so a run for date D cannot read data from the future.
    """
    root = landing_dir / entity
    if not root.is_dir():
        return []
    partitions = []
    for child in root.iterdir():
        if not child.is_dir():
            continue
        try:
            day = dt.date.fromisoformat(child.name)
        except ValueError:
            continue
        if day <= up_to:
            partitions.append(Partition(entity, day, child))
    return sorted(partitions, key=lambda p: p.partition_date)


def write_partition(
    frame: pd.DataFrame,
    landing_dir: Path,
    entity: str,
    partition_date: dt.date,
    *,
    file_name: str = "part-0.parquet",
    complete: bool = True,
) -> Path:
    """Write one partition atomically (temp file + rename), replacing the same file name.

    Columns are reordered to the contract; missing or unknown columns are an error so that
    writers cannot hand over something the ingest step would reject. With ``complete`` (the
    default) the completion marker is written after the file; a writer handing over several
    files for one partition passes ``complete=False`` for all but the last one (the marker is
    then removed until that last file is written).
    """
    columns = list(CONTRACT[entity])
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise ValueError(
            f"{entity} partition {partition_date}: columns do not match the landing contract "
            f"(missing {missing}, unexpected {extra})"
        )
    target_dir = partition_dir(landing_dir, entity, partition_date)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / file_name
    tmp = target_dir / f".{file_name}.tmp"
    if not complete:
        marker_path(landing_dir, entity, partition_date).unlink(missing_ok=True)
    frame[columns].to_parquet(tmp, index=False)
    os.replace(tmp, target)
    if complete:
        mark_complete(landing_dir, entity, partition_date)
    return target
