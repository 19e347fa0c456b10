"""The landing manifest (``raw.landing_manifest``): which partitions are loaded, from which bytes.

Every loaded partition has a row: its fingerprint (file names and bytes, see
:meth:`shopflow.landing.Partition.fingerprint`), kept rows, batch id and run date. A
partition is ingested again when its fingerprint differs. An unchanged partition is
recognised without reading its bytes: the manifest also records the files' stat signature
(:meth:`~shopflow.landing.Partition.stat_signature`) taken when they were fingerprinted, and
only partitions whose signature differs are fingerprinted again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shopflow.ingest.tables import MANIFEST_TABLE
from shopflow.landing import CONTRACT, Partition, list_partitions

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from shopflow.settings import Settings


def read_manifest(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, dt.date], str]:
    """The recorded fingerprint of every loaded partition: (entity, date) -> fingerprint."""
    rows = con.execute(
        f"select entity, partition_date, fingerprint from {MANIFEST_TABLE}"
    ).fetchall()
    return {(entity, day): fp for entity, day, fp in rows}


def read_file_stats(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, dt.date], str]:
    """The recorded stat signature of every loaded partition that has one."""
    rows = con.execute(
        f"select entity, partition_date, file_stats from {MANIFEST_TABLE} "
        "where file_stats is not null"
    ).fetchall()
    return {(entity, day): stats for entity, day, stats in rows}


def next_batch_id(con: duckdb.DuckDBPyConnection) -> int:
    """The id of the next ingest batch: one more than any recorded."""
    return con.execute(f"select coalesce(max(batch_id), 0) + 1 from {MANIFEST_TABLE}").fetchone()[0]


@dataclass
class LandingScan:
    """The partitions up to a run date, compared with the manifest."""

    # new or changed: (partition, fingerprint, stat signature or None)
    changed: list[tuple[Partition, str, str | None]] = field(default_factory=list)
    # unchanged bytes whose recorded stat signature is missing or stale (copied, touched)
    restated: dict[tuple[str, dt.date], str] = field(default_factory=dict)
    total: int = 0


def scan_landing(
    settings: Settings,
    run_date: dt.date,
    manifest: dict[tuple[str, dt.date], str],
    file_stats: dict[tuple[str, dt.date], str] | None = None,
) -> LandingScan:
    """Compare every partition up to ``run_date`` with the manifest's fingerprints.

    A partition whose stat signature equals the one recorded with its fingerprint
    (``file_stats``) is unchanged without reading its bytes; every other one is fingerprinted.
    """
    scan = LandingScan()
    file_stats = file_stats or {}
    for entity in CONTRACT:
        for partition in list_partitions(settings.landing_dir, entity, run_date):
            scan.total += 1
            key = (entity, partition.partition_date)
            # taken before the bytes are read: a write after it shows in the next signature
            signature = partition.stat_signature()
            if signature is not None and key in manifest and file_stats.get(key) == signature:
                continue
            fingerprint = partition.fingerprint()
            if manifest.get(key) != fingerprint:
                scan.changed.append((partition, fingerprint, signature))
            elif signature is not None:
                scan.restated[key] = signature
    return scan


def changed_partitions(
    settings: Settings,
    run_date: dt.date,
    manifest: dict[tuple[str, dt.date], str],
    file_stats: dict[tuple[str, dt.date], str] | None = None,
) -> list[tuple[Partition, str]]:
    """Partitions up to ``run_date`` that are new or whose fingerprint changed (see
    :func:`scan_landing`; without ``file_stats`` every partition is fingerprinted)."""
    scan = scan_landing(settings, run_date, manifest, file_stats)
    return [(partition, fingerprint) for partition, fingerprint, _ in scan.changed]


def record_partitions(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    changed: list[tuple[Partition, str, str | None]],
    rows: dict[dt.date, int],
    batch_id: int,
    run_date: dt.date,
) -> None:
    """Record loaded partitions, replacing their earlier entries (caller holds a
    transaction). ``changed``: (partition, fingerprint, stat signature); ``rows``: kept rows
    per partition date."""
    import pandas as pd

    manifest = pd.DataFrame(
        {
            "entity": entity,
            "partition_date": [p.partition_date for p, _, _ in changed],
            "fingerprint": [fingerprint for _, fingerprint, _ in changed],
            "row_count": [rows.get(p.partition_date, 0) for p, _, _ in changed],
            "batch_id": batch_id,
            "loaded_for_run_date": run_date,
            "file_stats": pd.Series([stats for _, _, stats in changed], dtype="object"),
        }
    )
    con.register("manifest_rows", manifest)
    columns = ", ".join(manifest.columns)
    con.execute(
        f"insert or replace into {MANIFEST_TABLE} ({columns}) select {columns} from manifest_rows"
    )
    con.unregister("manifest_rows")


def record_file_stats(
    con: duckdb.DuckDBPyConnection, restated: dict[tuple[str, dt.date], str]
) -> None:
    """Record the stat signature of partitions found unchanged by their bytes (copied or
    touched files), so later runs need not read them again (caller holds a transaction)."""
    import pandas as pd

    if not restated:
        return
    frame = pd.DataFrame(
        [(entity, day, stats) for (entity, day), stats in restated.items()],
        columns=["entity", "partition_date", "file_stats"],
    )
    con.register("restated", frame)
    con.execute(
        f"update {MANIFEST_TABLE} as manifest set file_stats = restated.file_stats "
        "from restated where manifest.entity = restated.entity "
        "and manifest.partition_date = restated.partition_date"
    )
    con.unregister("restated")
