from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from shopflow.generator import ShopSpec, generate_shop
from shopflow.ingest import LandingFormatError, ingest_landing
from shopflow.landing import write_partition
from shopflow.quality import QualityGateError

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
    counts = _raw_counts(settings)["rows"]
    assert max(counts) == run_date
    assert min(counts) == SPEC.start
    expected = sum(len(_lines(settings, SPEC.start + dt.timedelta(days=i))) for i in range(10))
    assert sum(counts.values()) == expected
    assert result.rows["order_lines"] == expected


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
    day = SPEC.start + dt.timedelta(days=5)
    frame = _lines(settings, day)
    write_partition(frame.head(3), settings.landing_dir, "order_lines", day)
    result = ingest_landing(settings, SPEC.end)
    assert result.partitions == {"order_lines": [day.isoformat()]}
    assert _raw_counts(settings)["rows"][day] == 3


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


def test_no_partition_at_all_is_a_clear_error(settings):
    with pytest.raises(LandingFormatError) as failure:
        ingest_landing(settings, dt.date(2025, 1, 1))
    assert "landing/order_lines: no partition dated on or before 2025-01-01" in str(failure.value)
