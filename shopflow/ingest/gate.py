"""The quality gate over read partitions: row-level suites, quarantine, volume rules.

Layers 2 and 3 of the gate (layer 1 is reading, :mod:`shopflow.ingest.reading`;
docs/runbooks/quality_gate.md has the table of outcomes):

2. Suite ``landing_<entity>`` checks every row. Rows breaking a *quarantine* rule (missing
   keys, zero quantity, negative price, unknown currency, a timestamp outside the partition's
   date, a later copy of a line) go to ``quality.quarantine`` (file, line, rule, run date,
   the row as JSON); the rest of the partition is loaded.
3. Suite ``landing_partitions`` checks every partition: it blocks when more than 5% of its
   rows are quarantined (more than 1 row under 20 rows: a few bad lines among thousands are
   routine, a larger share means the export itself is broken and loading the rest would
   publish a skewed day), and when its row count is 10x or more, or 10% or less, of its
   usual volume (order lines; :mod:`shopflow.ingest.volume`: same weekday, the shop's own
   seasonality; needs 7 partitions of history and 20 rows per partition on average, so a
   new shop's first week and a very small shop are not volume-checked). The thresholds are
   settings (``quality.*`` in shopflow.toml). A first load of history, or a backfill of
   dates before the last loaded one, only warns on volume (``quality.history_volume_severity``).
   On-call accepts a real spike or drop of a night by dropping an empty ``_volume_ok`` file
   into the partition folder and rerunning.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from shopflow.ingest.tables import MANIFEST_TABLE, QUARANTINE_COLUMNS
from shopflow.ingest.volume import (  # noqa: F401  (re-exported: shopflow.ingest)
    VOLUME_MIN_AVERAGE_ROWS,
    VOLUME_MIN_HISTORY,
    VOLUME_WINDOW_DAYS,
    usual_volume,
)
from shopflow.landing import CONTRACT, Partition
from shopflow.quality import validate_frame

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd

    from shopflow.quality import QualityReport
    from shopflow.settings import Settings

log = logging.getLogger(__name__)

# The key that makes a row unique within a partition; later copies are quarantined.
KEY_COLUMNS = {
    "order_lines": ("order_id", "line_number"),
    "products": ("product_id",),
    "customers": ("customer_id",),
}
# Set by ingest on order lines whose (order_id, line_number) another partition already holds
# (shopflow.ingest.load.mark_lines_loaded_elsewhere): that partition's date, else null.
OTHER_PARTITION_COLUMN = "_other_partition_date"
# Set by ingest: |quantity| over the largest |quantity| of the product's (else the shop's) lines
# already loaded (shopflow.ingest.load.compare_with_history); null when nothing is loaded.
QUANTITY_VS_HISTORY_COLUMN = "_quantity_vs_history"
# Blocked partitions are validated once more each (so the report names their files) only
# up to this many; more are reported once, examples naming their dates.
NAME_PARTITIONS_MAX = 5
VOLUME_OK_MARKER = "_volume_ok"  # on-call's "this spike or drop is real" for one partition


def prepare_for_validation(frame: pd.DataFrame, entity: str, timezone: str = "UTC") -> pd.DataFrame:
    """The contract columns plus the derived columns the landing suites check (same index).

    ``key_occurrence`` numbers the rows sharing a key within a partition in file and line order
    (1 = first); ``ordered_date`` / ``partition_date`` (order lines) are ISO dates, so a failed
    rule shows readable examples. ``ordered_date`` is the local date of ``ordered_at`` (UTC)
    in the shop's ``timezone``: the business day a line belongs to.
    """
    out = frame[list(CONTRACT[entity])]  # copy-on-write: adding columns leaves frame as is
    if entity == "order_lines":
        ordered_at = frame["ordered_at"]
        if timezone != "UTC":
            ordered_at = ordered_at.dt.tz_localize("UTC").dt.tz_convert(timezone)
        out["ordered_date"] = ordered_at.dt.strftime("%Y-%m-%d")
        days = {day: day.isoformat() for day in frame["_partition_date"].unique()}
        out["partition_date"] = frame["_partition_date"].map(days.__getitem__)
        # the date of another partition already holding the line (set by ingest), else null
        other = frame.get(OTHER_PARTITION_COLUMN)
        out["loaded_under_date"] = None if other is None else other
        # units over the largest line loaded before for the product (else the shop), by ingest
        ratio = frame.get(QUANTITY_VS_HISTORY_COLUMN)
        out["quantity_vs_history"] = float("nan") if ratio is None else ratio
    keys = list(KEY_COLUMNS[entity])
    complete = frame[keys].notna().all(axis=1)
    occurrence = frame[complete].groupby(["_partition_date", *keys], sort=False).cumcount() + 1
    out["key_occurrence"] = occurrence.reindex(frame.index).astype("float64")
    return out


def _partition_label(entity: str, day: dt.date, files: list[str]) -> str:
    return f"landing/{entity}/{day} ({', '.join(sorted(files))})"


def validate_entity(
    frame: pd.DataFrame,
    entity: str,
    partitions: list[Partition],
    settings: Settings,
    run_name,
    *,
    name_partitions: bool | None = None,
) -> list[QualityReport]:
    """Validate an entity's new partitions in one pass with its row-level suite.

    Rows breaking a quarantine rule are listed in the report (not blocking). On a blocking
    failure each partition is validated on its own so the report names the partition (and
    file) that broke the rule; ``name_partitions`` (default: more than one partition) says
    whether to, so that a group of a larger batch names its partitions as the batch would.
    """
    suite = f"landing_{entity}"
    prepared = prepare_for_validation(frame, entity, settings.timezone)
    days = sorted(p.partition_date for p in partitions)
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
    report = validate_frame(
        prepared, suite, batch=f"landing/{entity}/{span}", settings=settings, run_name=run_name
    )
    report = _count_partitions(report, frame)
    if name_partitions is None:
        name_partitions = len(partitions) > 1
    # Naming each partition costs one validation per partition: worth it for a few, not for
    # a history of hundreds failing for one reason (the report's examples already tell it).
    if not report.blocked or not name_partitions or len(partitions) > NAME_PARTITIONS_MAX:
        return [report]
    reports = []
    for day, part in frame.groupby("_partition_date", sort=True):
        files = list(part["_source_file"].unique())
        reports.append(
            validate_frame(
                prepared.loc[part.index],
                suite,
                batch=_partition_label(entity, day, files),
                settings=settings,
                run_name=run_name,
            )
        )
    return [r for r in reports if r.blocked] or [report]


def _count_partitions(report: QualityReport, frame: pd.DataFrame) -> QualityReport:
    """The report with each quarantine rule's count of partitions its rows are in."""
    import dataclasses

    if not report.quarantined:
        return report
    counted = [
        dataclasses.replace(
            failure,
            partitions=int(frame.loc[list(failure.row_indexes), "_partition_date"].nunique()),
        )
        for failure in report.quarantined
    ]
    return dataclasses.replace(report, quarantined=counted)


def volume_history(con: duckdb.DuckDBPyConnection, entity: str) -> dict[dt.date, int]:
    """Rows per partition already loaded (the manifest), the start of the volume history."""
    return {
        day: int(rows)
        for day, rows in con.execute(
            f"select partition_date, row_count from {MANIFEST_TABLE} where entity = ?",
            [entity],
        ).fetchall()
    }


def partition_summary(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    frame: pd.DataFrame,
    quarantined: set,
    partitions: list[Partition],
    extra_columns: dict[str, list[str]],
    history: dict[dt.date, int] | None = None,
    *,
    history_load=None,
) -> pd.DataFrame:
    """One row per partition of the batch: what suite ``landing_partitions`` checks.

    Volume history is the row count of every partition already loaded (the manifest) plus the
    kept rows of this batch's earlier partitions, so a backfill of many days is checked day by
    day against the days before it (:func:`shopflow.ingest.volume.usual_volume`). A batch
    validated in groups passes the same ``history`` (from :func:`volume_history`) to each
    group in date order; it is updated in place with the group's partitions.

    ``history_load(day)`` (default: never) says that a partition is history being loaded (a
    first load, a backfill of earlier dates): its volume goes to ``history_volume_ratio``,
    which the suite only warns about, instead of ``volume_ratio``, which blocks. A real
    closure or season in a shop's past must never stop its history from loading.
    """
    import pandas as pd

    if history is None:
        history = volume_history(con, entity)
    is_quarantined = frame.index.isin(list(quarantined))
    received = frame.groupby("_partition_date").size()
    set_aside = frame[is_quarantined].groupby("_partition_date").size()
    records = []
    for partition in sorted(partitions, key=lambda p: p.partition_date):
        day = partition.partition_date
        rows = int(received.get(day, 0))
        bad = int(set_aside.get(day, 0))
        # from the partition, not the frame: a header-only file has no rows to name it
        labels = [f"landing/{entity}/{day}/{file.name}" for file in partition.files]
        extra = sorted({c for label in labels for c in extra_columns.get(label, [])})
        average, history_partitions = usual_volume(history, day)
        accepted = (partition.path / VOLUME_OK_MARKER).exists()
        ratio = None
        if entity == "order_lines" and average is not None and not accepted:
            ratio = round(rows / average, 2) if average else None
        is_history = bool(history_load and history_load(day))
        history[day] = rows - bad  # what this partition will hold once loaded
        records.append(
            {
                "entity": entity,
                "partition_date": day.isoformat(),
                "files": ", ".join(labels),
                "rows": rows,
                "quarantined_rows": bad,
                "quarantined_share": round(bad / rows, 4) if rows else 0.0,
                "history_partitions": history_partitions,
                "usual_rows": None if average is None else round(average, 1),
                "volume_ratio": None if is_history else ratio,
                "history_volume_ratio": ratio if is_history else None,
                "volume_accepted": accepted,
                "extra_columns": ", ".join(extra) or None,
            }
        )
    summary = pd.DataFrame.from_records(records)
    for column in ("usual_rows", "volume_ratio", "history_volume_ratio"):
        summary[column] = summary[column].astype("float64")
    return summary.astype({"extra_columns": "object"})


def validate_partitions(
    summary: pd.DataFrame, entity: str, settings: Settings, run_name: str
) -> list[QualityReport]:
    """Suite ``landing_partitions`` over the batch, in one validation: its examples name the
    failing partitions by date (the suite's id_columns). When at most NAME_PARTITIONS_MAX
    partitions fail, each is validated once more on its own so that the report names its
    files; hundreds of partitions failing for one reason stay one finding, found in one
    validation instead of one per partition."""
    days = list(summary["partition_date"])
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    label = f"landing/{entity}/{span} partitions"
    if len(summary) == 1:
        row = summary.iloc[0]
        label = f"landing/{entity}/{row['partition_date']} ({row['files']})"
    report = validate_frame(
        summary, "landing_partitions", batch=label, settings=settings, run_name=run_name
    )
    if not report.blocked or len(summary) == 1:
        return [report]
    failing = _failing_dates(report)
    if failing is None or len(failing) > NAME_PARTITIONS_MAX:
        return [report]
    reports = []
    for position in range(len(summary)):
        row = summary.iloc[[position]]
        if row["partition_date"].iloc[0] not in failing:
            continue
        single = validate_frame(
            row,
            "landing_partitions",
            batch=f"landing/{entity}/{row['partition_date'].iloc[0]} ({row['files'].iloc[0]})",
            settings=settings,
            run_name=run_name,
        )
        if single.blocked:
            reports.append(single)
    return reports or [report]


def _failing_dates(report: QualityReport) -> set[str] | None:
    """Dates of the partitions a blocking rule names; None when the examples do not name
    them all (then the report stands as it is)."""
    dates: set[str] = set()
    for failure in report.blocking_failures:
        examples = failure.unexpected_examples
        if failure.unexpected_count is None or len(examples) < failure.unexpected_count:
            return None
        for example in examples:
            if not isinstance(example, dict) or "partition_date" not in example:
                return None
            dates.add(example["partition_date"])
    return dates


def quarantine_frame(
    frame: pd.DataFrame, entity: str, reports: list[QualityReport], run_date: dt.date
) -> pd.DataFrame:
    """One row per (quarantined line, rule it broke): file, line, rule, run date, the line as
    JSON. ``batch_id`` is filled in when the batch is written."""
    import pandas as pd

    records = []
    columns = list(CONTRACT[entity])
    for report in reports:
        for failure in report.quarantined:
            if not failure.row_indexes:
                continue
            rows = frame.loc[list(failure.row_indexes)]
            as_json = rows[columns].to_json(orient="records", lines=True, date_format="iso")
            for (_, row), line_json in zip(rows.iterrows(), as_json.splitlines(), strict=True):
                records.append(
                    {
                        "entity": entity,
                        "partition_date": row["_partition_date"],
                        "source_file": row["_source_file"],
                        "source_line": int(row["_source_line"]),
                        "rule": failure.rule,
                        "description": failure.description,
                        "row_json": line_json,
                        "run_date": run_date,
                    }
                )
    result = pd.DataFrame.from_records(records, columns=[*QUARANTINE_COLUMNS])
    return result.drop_duplicates(["source_file", "source_line", "rule"])


def log_partitions(summary: pd.DataFrame) -> None:
    """One log line per partition that quarantined rows or has an unusual volume."""
    for row in summary.itertuples(index=False):
        ratio = row.volume_ratio
        if ratio != ratio:  # NaN: not blocking; a first load's volume is in its own column
            ratio = row.history_volume_ratio
        unusual = ratio == ratio and not 0.2 <= ratio <= 5  # NaN != NaN: not checked
        if row.quarantined_rows or unusual:
            volume = (
                "volume not checked"
                if ratio != ratio
                else f"usual volume {row.usual_rows} rows (ratio {ratio})"
            )
            log.warning(
                "landing/%s/%s: rows received %d, quarantined %d (%.1f%%), %s",
                row.entity,
                row.partition_date,
                row.rows,
                row.quarantined_rows,
                100 * row.quarantined_share,
                volume,
            )
