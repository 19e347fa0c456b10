from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from shopflow import landing
from shopflow.generator import ShopSpec, generate_shop
from shopflow.ingest import (
    LandingFormatError,
    ingest_landing,
    load,
    partition_groups,
    read_partition,
    reading,
)
from shopflow.landing import CONTRACT, Partition, list_partitions, write_partition
from shopflow.quality import QualityGateError
from tests.conftest import make_settings

SPEC = ShopSpec(customers=60, products=20, days=20, start=dt.date(2025, 3, 1), seed=11)


def _raw_counts(settings) -> dict:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "select _partition_date, count(*) from raw.order_lines group by 1 order by 1"
        ).fetchall()
        manifest = con.execute(
            "select entity, partition_date, fingerprint from raw.landing_manifest order by 1, 2"
        ).fetchall()
    finally:
        con.close()
    return {"rows": dict(rows), "manifest": manifest}


def _lines(settings, day: dt.date) -> pd.DataFrame:
    return pd.read_parquet(settings.landing_dir / "order_lines" / day.isoformat())


def test_ingest_loads_partitions_up_to_the_run_date_only(settings):
    generate_shop(SPEC, settings.landing_dir)
    run_date = SPEC.start + dt.timedelta(days=9)
    result = ingest_landing(settings, run_date)
    loaded = _raw_counts(settings)
    counts = loaded["rows"]
    assert max(counts) == run_date
    assert min(counts) == SPEC.start
    expected = sum(len(_lines(settings, SPEC.start + dt.timedelta(days=i))) for i in range(10))
    assert sum(counts.values()) == expected
    assert result.rows["order_lines"] == expected
    # the manifest records exactly the partitions loaded
    assert [day for entity, day, _ in loaded["manifest"] if entity == "order_lines"] == sorted(
        counts
    )


def test_rerun_without_changes_loads_nothing(settings):
    generate_shop(SPEC, settings.landing_dir)
    ingest_landing(settings, SPEC.end)
    before = _raw_counts(settings)
    again = ingest_landing(settings, SPEC.end)
    assert again.batch_id is None
    assert again.partitions == {}
    assert _raw_counts(settings) == before


def test_changed_partition_is_replaced_not_appended(settings):
    generate_shop(SPEC, settings.landing_dir)
    ingest_landing(settings, SPEC.end)
    before = _raw_counts(settings)["manifest"]
    day = SPEC.start + dt.timedelta(days=5)
    frame = _lines(settings, day)
    write_partition(frame.head(3), settings.landing_dir, "order_lines", day)
    result = ingest_landing(settings, SPEC.end)
    assert result.partitions == {"order_lines": [day.isoformat()]}
    after = _raw_counts(settings)
    assert after["rows"][day] == 3
    # only the replaced partition has a new fingerprint
    refingerprinted = [
        (entity, partition_date)
        for (entity, partition_date, new), (_, _, old) in zip(
            after["manifest"], before, strict=True
        )
        if new != old
    ]
    assert refingerprinted == [("order_lines", day)]


def test_blocking_quality_failure_changes_nothing(settings):
    generate_shop(SPEC, settings.landing_dir)
    first = SPEC.start + dt.timedelta(days=9)
    ingest_landing(settings, first)
    before = _raw_counts(settings)
    bad_day = first + dt.timedelta(days=1)
    frame = _lines(settings, bad_day)
    frame["quantity"] = 0  # every line: far above the quarantine threshold
    write_partition(frame, settings.landing_dir, "order_lines", bad_day)
    with pytest.raises(QualityGateError) as failure:
        ingest_landing(settings, SPEC.end)
    message = str(failure.value)
    assert f"landing/order_lines/{bad_day.isoformat()} (" in message
    assert "at most 1 row of a partition under 20 rows is quarantined" in message
    assert "quantity is never zero" in message
    assert _raw_counts(settings) == before


def _quarantine(settings) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(
            "select partition_date, source_file, source_line, rule, run_date "
            "from quality.quarantine order by all"
        ).fetchall()
    finally:
        con.close()


def test_a_bad_line_is_quarantined_and_the_rest_of_its_partition_loaded(settings):
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start + dt.timedelta(days=3)
    frame = _lines(settings, day)
    frame.loc[1, "unit_price"] = -1.0
    write_partition(frame, settings.landing_dir, "order_lines", day)

    result = ingest_landing(settings, SPEC.end)

    assert _quarantine(settings) == [
        (day, f"landing/order_lines/{day}/part-0.parquet", 2, "negative_price", SPEC.end)
    ]
    assert _raw_counts(settings)["rows"][day] == len(frame) - 1
    assert result.quarantined["order_lines"] == 1


def test_a_rerun_of_a_partition_replaces_its_quarantine_rows(settings):
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start + dt.timedelta(days=3)
    frame = _lines(settings, day)
    frame.loc[1, "unit_price"] = -1.0
    write_partition(frame, settings.landing_dir, "order_lines", day)
    ingest_landing(settings, SPEC.end)
    frame.loc[1, "unit_price"] = 1.0
    frame.loc[0, "currency"] = "XYZ"
    write_partition(frame, settings.landing_dir, "order_lines", day)

    ingest_landing(settings, SPEC.end)

    assert _quarantine(settings) == [
        (day, f"landing/order_lines/{day}/part-0.parquet", 1, "unknown_currency", SPEC.end)
    ]
    assert _raw_counts(settings)["rows"][day] == len(frame) - 1


def test_missing_column_names_file_and_column(settings):
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start
    folder = settings.landing_dir / "order_lines" / day.isoformat()
    frame = _lines(settings, day).drop(columns=["unit_price"])
    (folder / "part-0.parquet").unlink()
    frame.to_csv(folder / "orders.csv", index=False)
    with pytest.raises(LandingFormatError) as failure:
        ingest_landing(settings, day)
    assert str(failure.value).startswith(
        f"landing/order_lines/{day.isoformat()}/orders.csv: missing required column(s) unit_price"
    )


def test_csv_with_a_bad_number_names_line_and_value(settings):
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start
    folder = settings.landing_dir / "order_lines" / day.isoformat()
    frame = _lines(settings, day).astype({"quantity": "object"})
    frame.loc[1, "quantity"] = "three"
    (folder / "part-0.parquet").unlink()
    frame.to_csv(folder / "orders.csv", index=False)
    with pytest.raises(LandingFormatError) as failure:
        ingest_landing(settings, day)
    assert "column quantity must be INTEGER; bad values at line 3: 'three'" in str(failure.value)


@pytest.mark.parametrize(
    ("value", "line"), [("2.5", 3), ("3000000000", 3)], ids=["fraction", "overflow"]
)
def test_a_number_that_would_change_on_the_way_in_names_line_and_value(settings, value, line):
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start
    folder = settings.landing_dir / "order_lines" / day.isoformat()
    frame = _lines(settings, day).astype({"quantity": "object"})
    frame.loc[1, "quantity"] = value
    (folder / "part-0.parquet").unlink()
    frame.to_csv(folder / "orders.csv", index=False)
    with pytest.raises(LandingFormatError) as failure:
        ingest_landing(settings, day)
    assert str(failure.value) == (
        f"landing/order_lines/{day}/orders.csv: column quantity must be INTEGER; bad values at "
        f"line {line}: '{value}' (whole numbers only: a fraction or a number out of range is "
        "not rounded)"
    )


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_csv_loads_like_plain_csv(settings, compression):
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start
    folder = settings.landing_dir / "order_lines" / day.isoformat()
    frame = _lines(settings, day)
    (folder / "part-0.parquet").unlink()
    suffix = {"gzip": "gz", "zstd": "zst"}[compression]
    with pa.CompressedOutputStream(str(folder / f"orders.csv.{suffix}"), compression) as out:
        out.write(frame.to_csv(index=False).encode())

    result = ingest_landing(settings, day)

    assert result.rows["order_lines"] == len(frame)
    assert _raw_counts(settings)["rows"] == {day: len(frame)}


def _quarantined(settings) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(
            "select partition_date, source_file, source_line, rule from quality.quarantine "
            "order by all"
        ).fetchall()
    finally:
        con.close()


def test_lines_already_loaded_under_another_date_are_named_by_file_and_line(settings):
    generate_shop(SPEC, settings.landing_dir)
    first, second = SPEC.start, SPEC.start + dt.timedelta(days=1)
    ingest_landing(settings, first)
    # a line of the first day sent again with the second day's lines, its timestamp moved
    again = _lines(settings, first).head(1)
    later = _lines(settings, second)
    again = again.assign(ordered_at=later["ordered_at"].iloc[0])
    write_partition(pd.concat([later, again]), settings.landing_dir, "order_lines", second)

    ingest_landing(settings, second)

    file = f"landing/order_lines/{second}/part-0.parquet"
    assert _quarantined(settings) == [(second, file, len(later) + 1, "line_under_another_date")]


def test_a_day_sent_again_under_a_new_date_is_blocked_with_that_cause_first(settings):
    generate_shop(SPEC, settings.landing_dir)
    first, second = SPEC.start, SPEC.start + dt.timedelta(days=1)
    ingest_landing(settings, first)
    resent = _lines(settings, first)
    resent = resent.assign(ordered_at=resent["ordered_at"] + pd.Timedelta(days=1))
    write_partition(resent, settings.landing_dir, "order_lines", second)

    with pytest.raises(QualityGateError) as blocked:
        ingest_landing(settings, second)

    assert str(blocked.value).splitlines()[1] == (
        "Cause: an order line (order_id, line_number) is loaded under one date only: a line "
        "already loaded, or in an earlier partition of the batch, is not loaded again under "
        "another date (shown as the date it is under) (rule line_under_another_date): "
        f"{len(resent)} of {len(resent)} rows (100.0 %) in 1 partition, e.g. '{first}'"
    )


@pytest.mark.parametrize("severity", ["warning", "quarantine"])
def test_a_line_far_beyond_anything_the_shop_sold_is_reported_per_config(settings, severity):
    settings = dataclasses.replace(settings, implausible_line_severity=severity)
    generate_shop(SPEC, settings.landing_dir)
    # a week of history to judge by, then a day with one absurd line
    first, second = SPEC.start + dt.timedelta(days=6), SPEC.start + dt.timedelta(days=7)
    ingest_landing(settings, first)
    lines = _lines(settings, second)
    lines.loc[0, "quantity"] = 1_000_000_000
    write_partition(lines, settings.landing_dir, "order_lines", second)

    result = ingest_landing(settings, second)

    file = f"landing/order_lines/{second}/part-0.parquet"
    rule = "a line stays within 100x the largest line its product had before or within the shop's"
    if severity == "warning":
        warned = [w.message() for r in result.reports for w in r.warnings]
        (implausible,) = [m for m in warned if m.startswith(rule)]
        assert ": 1 row breaks it (e.g. " in implausible  # the absurd line, and only it
        assert _quarantined(settings) == []
    else:
        assert _quarantined(settings) == [(second, file, 1, "implausible_quantity")]


def test_no_partition_at_all_is_a_clear_error(settings):
    with pytest.raises(LandingFormatError) as failure:
        ingest_landing(settings, dt.date(2025, 1, 1))
    assert "landing/order_lines: no partition dated on or before 2025-01-01" in str(failure.value)


def _warehouse(settings) -> dict:
    """Every raw row, manifest entry (without the file signatures, which name inodes) and
    quarantine row."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        tables = {
            table: con.execute(f"select * from raw.{table} order by all").fetchall()
            for table in ("order_lines", "products", "customers")
        }
        tables["manifest"] = con.execute(
            "select * exclude (file_stats) from raw.landing_manifest order by all"
        ).fetchall()
        tables["quarantine"] = con.execute(
            "select * from quality.quarantine order by all"
        ).fetchall()
    finally:
        con.close()
    return tables


def _with_bad_lines(settings) -> None:
    """SPEC's shop with a negative price on day 3 and a repeated line on day 8."""
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start + dt.timedelta(days=3)
    frame = _lines(settings, day)
    frame.loc[0, "unit_price"] = -1.0
    write_partition(frame, settings.landing_dir, "order_lines", day)
    day = SPEC.start + dt.timedelta(days=8)
    frame = _lines(settings, day)
    write_partition(pd.concat([frame, frame.head(1)]), settings.landing_dir, "order_lines", day)


def test_a_history_read_in_groups_loads_what_one_group_loads(settings, tmp_path, monkeypatch):
    _with_bad_lines(settings)
    whole = ingest_landing(settings, SPEC.end)
    grouped_home = make_settings(tmp_path / "grouped")
    grouped_home.ensure_dirs()
    shutil.copytree(settings.landing_dir, grouped_home.landing_dir, dirs_exist_ok=True)
    monkeypatch.setattr(load, "INGEST_BATCH_ROWS", 10)

    grouped = ingest_landing(grouped_home, SPEC.end)

    row_level = [r for r in grouped.reports if r.suite == "landing_order_lines"]
    assert len(row_level) > 3  # the history was really read in several groups
    assert _warehouse(grouped_home) == _warehouse(settings)
    assert grouped.as_dict() == whole.as_dict()
    assert whole.quarantined["order_lines"] == 2


def test_a_block_in_a_later_group_leaves_the_warehouse_unchanged(settings, monkeypatch):
    _with_bad_lines(settings)
    ingest_landing(settings, SPEC.start + dt.timedelta(days=1))
    before = _warehouse(settings)
    bad_day = SPEC.start + dt.timedelta(days=17)
    frame = _lines(settings, bad_day)
    frame["quantity"] = 0
    write_partition(frame, settings.landing_dir, "order_lines", bad_day)
    monkeypatch.setattr(load, "INGEST_BATCH_ROWS", 10)

    with pytest.raises(QualityGateError) as failure:
        ingest_landing(settings, SPEC.end)

    assert (
        f"- landing/order_lines/{bad_day} (landing/order_lines/{bad_day}/part-0.parquet) "
        "(suite landing_partitions):\n"
        "    at most 1 row of a partition under 20 rows is quarantined"
    ) in str(failure.value)
    assert _warehouse(settings) == before  # the earlier groups' staged rows were not written


def test_a_failure_while_writing_leaves_the_warehouse_unchanged(settings, monkeypatch):
    _with_bad_lines(settings)
    ingest_landing(settings, SPEC.start + dt.timedelta(days=1))
    before = _warehouse(settings)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(load, "record_file_stats", fail)  # the transaction's last write
    with pytest.raises(OSError, match="disk full"):
        ingest_landing(settings, SPEC.end)

    assert _warehouse(settings) == before


VOLUME_SPEC = ShopSpec(customers=400, products=30, days=16, start=dt.date(2025, 3, 1), seed=5)


def _volume_gate(settings, max_rows: int, monkeypatch) -> tuple[list, list]:
    """Ingest VOLUME_SPEC with a 15x spike on day 12 in groups of ``max_rows``: the blocked
    reports (batch, messages) and the order lines' groups (first and last date). A first load
    only warns on volume unless configured to block (as here)."""
    settings = dataclasses.replace(settings, history_volume_severity="blocking")
    generate_shop(VOLUME_SPEC, settings.landing_dir)
    day = VOLUME_SPEC.start + dt.timedelta(days=11)
    lines = _lines(settings, day)
    spike = pd.concat([lines.assign(order_id=lines["order_id"] + f"-{n}") for n in range(15)])
    write_partition(spike, settings.landing_dir, "order_lines", day)
    monkeypatch.setattr(load, "INGEST_BATCH_ROWS", max_rows)
    partitions = list_partitions(settings.landing_dir, "order_lines", VOLUME_SPEC.end)
    groups = [(g[0].partition_date, g[-1].partition_date) for g in partition_groups(partitions)]
    with pytest.raises(QualityGateError) as failure:
        ingest_landing(settings, VOLUME_SPEC.end)
    blocked = [(r.batch, [f.message() for f in r.blocking_failures]) for r in failure.value.reports]
    return [b for b, r in zip(blocked, failure.value.reports, strict=True) if r.blocked], groups


def test_volume_checks_across_group_boundaries_match_one_group(settings, tmp_path, monkeypatch):
    one_group, single = _volume_gate(settings, 10**9, monkeypatch)
    other = make_settings(tmp_path / "grouped")
    other.ensure_dirs()
    several_groups, groups = _volume_gate(other, 80, monkeypatch)

    spike_day = VOLUME_SPEC.start + dt.timedelta(days=11)
    assert len(single) == 1
    assert (spike_day, spike_day) in groups  # its whole history is in earlier groups
    assert len(groups) > 4
    assert several_groups == one_group
    assert one_group == [
        (
            f"landing/order_lines/{spike_day} (landing/order_lines/{spike_day}/part-0.parquet)",
            [
                "no sudden volume spike: a partition has less than 10x its usual rows (shown "
                "as rows / usual rows): 1 partition breaks it "
                f"(e.g. (partition_date='{spike_day}', volume_ratio=16.79))"
            ],
        )
    ]


def test_a_first_load_of_history_warns_on_volume_and_a_later_night_blocks(settings):
    generate_shop(VOLUME_SPEC, settings.landing_dir)
    quiet = VOLUME_SPEC.start + dt.timedelta(days=11)
    lines = _lines(settings, quiet)
    write_partition(lines.head(2), settings.landing_dir, "order_lines", quiet)  # a closure
    history_end = VOLUME_SPEC.start + dt.timedelta(days=13)

    first = ingest_landing(settings, history_end)  # the history loads, with a warning

    warnings = [w.message() for r in first.reports for w in r.warnings]
    assert any(
        m.startswith("history, not blocked: a partition of a first load or backfill has more")
        and f"partition_date='{quiet}'" in m
        for m in warnings
    )
    night = history_end + dt.timedelta(days=1)
    lines = _lines(settings, night)
    write_partition(lines.head(2), settings.landing_dir, "order_lines", night)
    with pytest.raises(QualityGateError) as blocked:
        ingest_landing(settings, night)  # a night after the history: the drop blocks
    assert (
        str(blocked.value)
        .splitlines()[1]
        .startswith("Cause: no sudden volume drop: a partition has more than 10% of its usual rows")
    )


def test_unchanged_partitions_are_recognised_without_reading_them(settings, monkeypatch):
    monkeypatch.setattr(landing, "STAT_SETTLE_NS", 0)
    generate_shop(SPEC, settings.landing_dir)
    ingest_landing(settings, SPEC.end)
    read = []
    fingerprint = Partition.fingerprint
    monkeypatch.setattr(Partition, "fingerprint", lambda p: read.append(p) or fingerprint(p))

    again = ingest_landing(settings, SPEC.end)

    assert read == []
    assert again.partitions == {}
    assert again.unchanged == sum(
        len(list_partitions(settings.landing_dir, e, SPEC.end)) for e in CONTRACT
    )


def test_a_file_rewritten_in_place_with_its_old_size_and_mtime_is_ingested_again(
    settings, monkeypatch
):
    monkeypatch.setattr(landing, "STAT_SETTLE_NS", 0)
    generate_shop(SPEC, settings.landing_dir)
    day = SPEC.start + dt.timedelta(days=4)
    folder = settings.landing_dir / "order_lines" / day.isoformat()
    frame = _lines(settings, day)
    (folder / "part-0.parquet").unlink()
    frame.assign(quantity=1).to_csv(folder / "orders.csv", index=False)
    ingest_landing(settings, SPEC.end)
    path = folder / "orders.csv"
    old = path.stat()
    with path.open("r+b") as handle:  # same bytes but one quantity: 1 -> 2
        handle.write(
            frame.assign(quantity=[2] + [1] * (len(frame) - 1)).to_csv(index=False).encode()
        )
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)

    result = ingest_landing(settings, SPEC.end)

    assert result.partitions == {"order_lines": [day.isoformat()]}
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        quantities = con.execute(
            "select _source_line, quantity from raw.order_lines "
            "where _partition_date = ? and quantity <> 1",
            [day],
        ).fetchall()
    finally:
        con.close()
    assert quantities == [(2, 2)]


def test_a_file_written_just_now_has_no_stat_signature_yet(settings):
    generate_shop(SPEC, settings.landing_dir)
    partition = list_partitions(settings.landing_dir, "order_lines", SPEC.start)[0]

    assert partition.stat_signature() is None  # its times may still move within this tick


def test_reading_in_chunks_keeps_the_dtypes_of_one_read(settings, monkeypatch):
    generate_shop(SPEC, settings.landing_dir)
    rows = pd.concat([_lines(settings, SPEC.start)] * 3000, ignore_index=True)
    rows["line_number"] = range(len(rows))
    rows["customer_id"] = rows["customer_id"].astype(object)
    rows.loc[: 2 * 2048, "customer_id"] = None  # the first chunks hold only guest lines
    write_partition(rows, settings.landing_dir, "order_lines", SPEC.start)
    partition = list_partitions(settings.landing_dir, "order_lines", SPEC.start)[0]
    whole = read_partition(partition, settings)
    monkeypatch.setattr(reading, "_FETCH_VECTORS", 1)

    chunked = read_partition(partition, settings)

    pd.testing.assert_frame_equal(chunked, whole)
    assert str(whole["customer_id"].dtype) == "str"


def test_a_manifest_from_before_the_stat_signature_gains_its_column(settings):
    generate_shop(SPEC, settings.landing_dir)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute(
        "create schema raw; create table raw.landing_manifest (entity varchar not null, "
        "partition_date date not null, fingerprint varchar not null, row_count bigint not null, "
        "batch_id bigint not null, loaded_for_run_date date not null, "
        "primary key (entity, partition_date))"
    )
    con.close()

    result = ingest_landing(settings, SPEC.end)

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "select count(*), count(file_stats) from raw.landing_manifest where batch_id = 1"
        ).fetchone()
    finally:
        con.close()
    assert rows == (sum(len(days) for days in result.partitions.values()), 0)
