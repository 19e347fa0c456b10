"""Ingest: landing partitions -> ``raw`` tables in the warehouse, behind the quality gate.

For business date D, every landing partition dated on or before D that is new or changed is
read, cast to the landing contract and validated; only when no partition fails a blocking
check are the partitions written, in one transaction. One module per step:

- :mod:`~shopflow.ingest.reading`: landing files (Parquet, CSV) cast to the contract; a file
  that cannot be read raises :class:`LandingFormatError` (layer 1 of the gate).
- :mod:`~shopflow.ingest.manifest`: ``raw.landing_manifest``, the fingerprints and stat
  signatures that say which partitions are new or changed (:func:`scan_landing`).
- :mod:`~shopflow.ingest.gate`: the ``landing_<entity>`` and ``landing_partitions`` suites,
  quarantined lines and volume rules (layers 2 and 3).
- :mod:`~shopflow.ingest.load`: :func:`ingest_landing`, which reads and validates in groups,
  stages kept rows in TEMP tables and replaces the partitions in ``raw`` in one transaction.
- :mod:`~shopflow.ingest.tables`: the raw, manifest and quarantine tables.

Tunables (``INGEST_BATCH_ROWS``, ``INGEST_DUCKDB_MEMORY_LIMIT`` in ``load``) live in the
module that reads them and are not re-exported here, so that a test patching them patches
the value actually used.

Heavy libraries (pandas, duckdb, pyarrow) are imported inside functions.
"""

from __future__ import annotations

from shopflow.ingest.gate import (
    KEY_COLUMNS,
    VOLUME_MIN_AVERAGE_ROWS,
    VOLUME_MIN_HISTORY,
    VOLUME_OK_MARKER,
    VOLUME_WINDOW_DAYS,
    partition_summary,
    prepare_for_validation,
    quarantine_frame,
    validate_entity,
    validate_partitions,
    volume_history,
)
from shopflow.ingest.load import IngestResult, ingest_landing, partition_groups
from shopflow.ingest.manifest import (
    LandingScan,
    changed_partitions,
    read_file_stats,
    read_manifest,
    scan_landing,
)
from shopflow.ingest.reading import (
    LandingFormatError,
    estimate_rows,
    read_partition,
    read_partitions,
)
from shopflow.ingest.tables import (
    LINEAGE_COLUMNS,
    MANIFEST_TABLE,
    QUALITY_SCHEMA,
    QUARANTINE_COLUMNS,
    QUARANTINE_TABLE,
    RAW_SCHEMA,
    ensure_raw_tables,
)

__all__ = [
    "KEY_COLUMNS",
    "LINEAGE_COLUMNS",
    "MANIFEST_TABLE",
    "QUALITY_SCHEMA",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_TABLE",
    "RAW_SCHEMA",
    "VOLUME_MIN_AVERAGE_ROWS",
    "VOLUME_MIN_HISTORY",
    "VOLUME_OK_MARKER",
    "VOLUME_WINDOW_DAYS",
    "IngestResult",
    "LandingFormatError",
    "LandingScan",
    "changed_partitions",
    "ensure_raw_tables",
    "estimate_rows",
    "ingest_landing",
    "partition_groups",
    "partition_summary",
    "prepare_for_validation",
    "quarantine_frame",
    "read_file_stats",
    "read_manifest",
    "read_partition",
    "read_partitions",
    "scan_landing",
    "validate_entity",
    "validate_partitions",
    "volume_history",
]
