from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import pandas as pd
import pytest

from shopflow import publish
from shopflow.jobs.nightly import write_predictions

DAY = dt.date(2025, 3, 1)


def _recs(day: dt.date, customers: int = 3, product_prefix: str = "P") -> pd.DataFrame:
    rows = [
        (day, f"C{c}", rank, f"{product_prefix}{rank}", 1.0 / rank, "popular", "v1")
        for c in range(customers)
        for rank in range(1, 11)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "run_date",
            "customer_id",
            "rank",
            "product_id",
            "score",
            "reason",
            "model_version",
        ],
    )


def _forecast(day: dt.date) -> pd.DataFrame:
    rows = [
        (day, "P1", day + dt.timedelta(days=h), h, 1.0, 0.0, 1.0, 2.0, "v1") for h in range(1, 29)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "run_date",
            "product_id",
            "forecast_date",
            "horizon_days",
            "units_mean",
            "units_p10",
            "units_p50",
            "units_p90",
            "model_version",
        ],
    )


def _predict(settings, day, recs=None):
    write_predictions(settings, "recommendations", day, _recs(day) if recs is None else recs)
    write_predictions(settings, "demand_forecast", day, _forecast(day))


def _published(settings, sql: str):
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_writes_database_and_parquet(settings):
    _predict(settings, DAY)
    summary = publish.publish(settings, DAY)
    assert summary["rows"]["recommendations"] == 30
    assert summary["rows"]["demand_forecast"] == 28
    assert _published(settings, "select count(*) from exports.recommendations") == [(30,)]
    folder = settings.exports_dir / "recommendations" / f"run_date={DAY}"
    assert len(pd.read_parquet(folder)) == 30


def test_rerun_replaces_the_date_and_keeps_other_dates(settings):
    earlier = DAY - dt.timedelta(days=1)
    _predict(settings, earlier)
    publish.publish(settings, earlier)
    earlier_file = (
        settings.exports_dir / "recommendations" / f"run_date={earlier}" / "part-0.parquet"
    )
    earlier_digest = _digest(earlier_file)
    _predict(settings, DAY)
    publish.publish(settings, DAY)
    _predict(settings, DAY, _recs(DAY, customers=2, product_prefix="Q"))
    publish.publish(settings, DAY)
    counts = _published(
        settings,
        "select run_date, count(*), min(product_id) from exports.recommendations "
        "group by run_date order by run_date",
    )
    assert counts == [(earlier, 30, "P1"), (DAY, 20, "Q1")]
    assert _digest(earlier_file) == earlier_digest


def test_failed_publish_leaves_published_outputs_untouched(settings, monkeypatch):
    _predict(settings, DAY)
    publish.publish(settings, DAY)
    before = _digest(settings.published_db_path)
    parquet = settings.exports_dir / "recommendations" / f"run_date={DAY}" / "part-0.parquet"
    parquet_before = _digest(parquet)
    _predict(settings, DAY, _recs(DAY, customers=5, product_prefix="Z"))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(publish, "stage_published_db", broken)
    with pytest.raises(OSError, match="disk full"):
        publish.publish(settings, DAY)
    assert _digest(settings.published_db_path) == before
    assert _digest(parquet) == parquet_before
    leftovers = [p.name for p in settings.exports_dir.rglob("*") if ".staged" in p.name]
    assert leftovers == []


def test_nothing_to_publish_is_an_error_naming_the_table(settings):
    write_predictions(settings, "recommendations", DAY, _recs(DAY))
    write_predictions(settings, "demand_forecast", DAY, _forecast(DAY).head(0))
    with pytest.raises(
        RuntimeError, match="predictions.demand_forecast has no rows for 2025-03-01"
    ):
        publish.publish(settings, DAY)


# The output contract as the README states it: (column, type, nullable) in order, and the key.
CONTRACT = {
    "recommendations": (
        "run_date DATE, customer_id VARCHAR, rank INTEGER, product_id VARCHAR, score DOUBLE, "
        "reason VARCHAR, model_version VARCHAR",
        ["run_date", "customer_id", "rank"],
    ),
    "demand_forecast": (
        "run_date DATE, product_id VARCHAR, forecast_date DATE, horizon_days INTEGER, "
        "units_mean DOUBLE, units_p10 DOUBLE, units_p50 DOUBLE, units_p90 DOUBLE, "
        "model_version VARCHAR",
        ["run_date", "product_id", "forecast_date"],
    ),
    "model_performance": (
        "model_name VARCHAR, model_version VARCHAR, metric VARCHAR, segment VARCHAR, "
        "value DOUBLE null, task VARCHAR, holdout_start DATE null, status VARCHAR null",
        ["model_name", "model_version", "metric", "segment"],
    ),
    "model_registry": (
        "model_name VARCHAR, version VARCHAR, status VARCHAR, cutoff_date DATE, sha256 VARCHAR, "
        "created_by VARCHAR, created_at TIMESTAMP, status_reason VARCHAR null, "
        "code_version VARCHAR null",
        ["model_name", "version"],
    ),
    "forecast_accuracy": (
        "run_date DATE, model_name VARCHAR, model_version VARCHAR null, horizon_bucket VARCHAR, "
        "volume_tier VARCHAR, metric VARCHAR, value DOUBLE null, products BIGINT, "
        "actual_units DOUBLE, evaluated_through DATE",
        ["run_date", "model_name", "horizon_bucket", "volume_tier", "metric"],
    ),
    "recommendation_outcomes": (
        "run_date DATE, model_name VARCHAR, model_version VARCHAR null, reason VARCHAR, "
        "metric VARCHAR, value DOUBLE null, customers BIGINT, hits BIGINT, "
        "evaluated_through DATE",
        ["run_date", "model_name", "reason", "metric"],
    ),
    "products": (
        "product_id VARCHAR, product_name VARCHAR, category VARCHAR null, list_price DOUBLE null, "
        "is_non_product BOOLEAN, first_sold_date DATE null, last_sold_date DATE null, "
        "as_of_date DATE",
        ["product_id"],
    ),
}


def test_published_tables_have_the_output_contract(settings):
    _predict(settings, DAY)
    publish.publish(settings, DAY)

    columns = _published(
        settings,
        "select table_name, column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = 'exports' order by table_name, ordinal_position",
    )
    keys = _published(
        settings,
        "select table_name, constraint_column_names from duckdb_constraints() "
        "where schema_name = 'exports' and constraint_type = 'PRIMARY KEY'",
    )
    published = {
        table: ", ".join(
            f"{name} {dtype}" + (" null" if nullable == "YES" else "")
            for t, name, dtype, nullable in columns
            if t == table
        )
        for table in {row[0] for row in columns}
    }
    assert published == {table: spec for table, (spec, _) in CONTRACT.items()}
    assert dict(keys) == {table: key for table, (_, key) in CONTRACT.items()}


def test_a_publish_is_one_snapshot_behind_the_exports_symlink(settings):
    _predict(settings, DAY)
    publish.publish(settings, DAY)
    assert settings.exports_dir.is_symlink()
    first = settings.exports_dir.resolve()
    snapshots_before = sorted((settings.home / ".snapshots").iterdir())
    later = DAY + dt.timedelta(days=1)
    _predict(settings, later)
    seen = []

    def refuse(snapshot):
        seen.append(sorted(p.name for p in (snapshot / "recommendations").iterdir()))
        raise ValueError("refused by the check")

    with pytest.raises(ValueError, match="refused"):
        publish.publish(settings, later, check=refuse)
    assert seen == [[f"run_date={DAY}", f"run_date={later}"]]  # the check saw the whole date
    assert settings.exports_dir.resolve() == first  # and nothing changed for readers
    assert sorted((settings.home / ".snapshots").iterdir()) == snapshots_before
    publish.publish(settings, later)
    names = sorted(p.name for p in (settings.exports_dir / "recommendations").iterdir())
    assert names == [f"run_date={DAY}", f"run_date={later}"]  # no staging folder among them
    old = first / "recommendations" / f"run_date={DAY}" / "part-0.parquet"
    new = settings.exports_dir / "recommendations" / f"run_date={DAY}" / "part-0.parquet"
    assert old.stat().st_ino == new.stat().st_ino  # unchanged dates are hard links, not copies


def test_dates_started_or_scored_but_never_published_are_listed(settings):
    started = DAY + dt.timedelta(days=5)
    scored = DAY + dt.timedelta(days=1)
    publish.record_run_started(settings, started)
    publish.record_run_started(settings, DAY)
    _predict(settings, DAY)
    _predict(settings, scored)
    assert publish.unpublished_dates(settings) == [DAY, scored, started]
    publish.publish(settings, DAY)
    assert publish.unpublished_dates(settings) == [scored, started]


def test_every_published_table_and_column_explains_itself(settings):
    _predict(settings, DAY)
    publish.publish(settings, DAY)

    tables = dict(
        _published(
            settings,
            "select table_name, comment from duckdb_tables() where schema_name = 'exports'",
        )
    )
    columns = _published(
        settings,
        "select table_name, column_name, comment from duckdb_columns() "
        "where schema_name = 'exports'",
    )
    docs = publish.export_descriptions(settings)

    assert set(tables) == set(publish.EXPORT_SCHEMAS)
    assert all(tables[t] == docs[t]["description"] and tables[t] for t in tables)
    assert [(t, c) for t, c, comment in columns if not comment] == []
    score = next(comment for t, c, comment in columns if (t, c) == ("recommendations", "score"))
    assert score.startswith("How strongly the model ranks the product for this customer")


def test_a_backfill_of_an_earlier_date_keeps_the_newer_products():
    import duckdb

    schema = publish.EXPORT_SCHEMAS["products"]

    def catalogue(day: dt.date, name: str) -> pd.DataFrame:
        return pd.DataFrame(
            [("P1", name, "mugs", 2.5, False, day, day, day)], columns=schema.column_names
        )

    con = duckdb.connect()
    con.execute("create schema exports")
    con.execute(f"create table exports.products ({schema.ddl()})")
    later = DAY + dt.timedelta(days=1)
    publish.replace_products(con, later, catalogue(later, "Mug, blue"))
    publish.replace_products(con, DAY, catalogue(DAY, "Mug"))  # a backfill
    assert con.execute("select product_name, as_of_date from exports.products").fetchall() == [
        ("Mug, blue", later)
    ]
    publish.replace_products(con, later, catalogue(later, "Mug, navy"))  # a rerun of the latest
    assert con.execute("select product_name from exports.products").fetchall() == [("Mug, navy",)]
