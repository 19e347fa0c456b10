"""The quality gate: committed GX suites, plain-words failures, severities, Data Docs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shopflow import quality
from shopflow.ingest import prepare_for_validation
from shopflow.landing import CONTRACT
from shopflow.quality.suites import build_suite
from shopflow.settings import PROJECT_ROOT, load_settings

BATCH = "landing/order_lines/2025-03-01/part-0.parquet"
LANDING_SUITES = ("landing_customers", "landing_order_lines", "landing_products")


@pytest.fixture
def settings(tmp_path):
    return load_settings({"SHOPFLOW_HOME": str(tmp_path / "home")})


def contract_order_lines() -> pd.DataFrame:
    """Six order lines already cast to the contract types; one guest, one return."""
    return pd.DataFrame(
        {
            "order_id": ["O1", "O1", "O2", "O3", "O3", "O4"],
            "line_number": [1, 2, 1, 1, 2, 1],
            "ordered_at": pd.to_datetime(
                [
                    "2025-03-01 08:00",
                    "2025-03-01 08:00",
                    "2025-03-01 09:30",
                    "2025-03-01 10:00",
                    "2025-03-01 10:00",
                    "2025-03-01 23:59",
                ]
            ),
            "customer_id": ["C1", "C1", None, "C2", "C2", "C1"],
            "product_id": ["P1", "P2", "P1", "P3", "P1", "P2"],
            "quantity": [2, 1, 5, -1, 3, 1],
            "unit_price": [2.5, 10.0, 2.5, 7.25, 2.5, 0.0],
            "currency": ["GBP", "GBP", "EUR", "GBP", "GBP", "USD"],
            "country": ["UK", "UK", "DE", "UK", "UK", "US"],
        }
    )


def as_validated(df: pd.DataFrame, entity: str = "order_lines") -> pd.DataFrame:
    """The frame with the derived columns ingest adds before validation (partition 03-01)."""
    lineage = df.assign(_partition_date=dt.date(2025, 3, 1))
    return prepare_for_validation(lineage, entity)


def clean_order_lines() -> pd.DataFrame:
    return as_validated(contract_order_lines())


def write_suite(project_root: Path, spec: dict) -> None:
    suites = project_root / "expectations" / "suites"
    suites.mkdir(parents=True, exist_ok=True)
    (suites / f"{spec['name']}.json").write_text(json.dumps(spec))


# -- suites as committed data ----------------------------------------------------------------
def test_importing_the_package_loads_neither_gx_nor_pandas():
    # A fresh interpreter is needed: this test process has already imported pandas and GX
    # (this file and the other tests use them), so sys.modules here proves nothing.
    code = (
        "import sys, shopflow.quality; "
        "print('great_expectations' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False False"


def test_the_landing_suites_are_committed_and_blocking(settings):
    specs = quality.load_suite_specs(settings)

    assert {name: specs[name]["meta"]["severity"] for name in LANDING_SUITES} == {
        "landing_customers": "blocking",
        "landing_order_lines": "blocking",
        "landing_products": "blocking",
    }


def test_every_committed_suite_is_a_valid_gx_suite(settings):
    specs = quality.load_suite_specs(settings)

    for name, spec in specs.items():
        suite = build_suite(spec)
        assert (suite.name, len(suite.expectations)) == (name, len(spec["expectations"]))


def test_order_lines_suite_requires_exactly_the_contract_columns(settings):
    spec = quality.load_suite_specs(settings)["landing_order_lines"]
    columns_rule = spec["expectations"][0]

    assert columns_rule["type"] == "expect_table_columns_to_match_set"
    assert columns_rule["kwargs"] == {
        "column_set": list(CONTRACT["order_lines"]),
        "exact_match": False,
    }


def test_order_lines_suite_knows_the_same_currencies_as_settings(settings):
    spec = quality.load_suite_specs(settings)["landing_order_lines"]
    (currency_rule,) = [
        e for e in spec["expectations"] if e["type"] == "expect_column_values_to_be_in_set"
    ]

    assert currency_rule["kwargs"]["value_set"] == list(settings.known_currencies)


def test_a_suite_without_plain_words_description_is_rejected(settings, tmp_path):
    project = tmp_path / "project"
    write_suite(
        project,
        {
            "name": "undescribed",
            "meta": {"severity": "blocking"},
            "expectations": [
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}
            ],
        },
    )
    settings = dataclasses.replace(settings, project_root=project)

    with pytest.raises(ValueError, match=r"expectation #1 \(expect_column_values_to_not_be_null\)"):
        quality.load_suite_specs(settings)


def test_an_invalid_expectation_fails_loudly_instead_of_being_dropped(settings, tmp_path):
    project = tmp_path / "project"
    write_suite(
        project,
        {
            "name": "typo",
            "meta": {"severity": "blocking"},
            "expectations": [
                {
                    "type": "expect_column_values_to_not_be_nul",
                    "kwargs": {"column": "a"},
                    "meta": {"description": "a is never missing"},
                }
            ],
        },
    )
    settings = dataclasses.replace(settings, project_root=project)

    with pytest.raises(ValueError, match=r"suite typo: expectation #1 .* is not valid"):
        quality.validate_frame(pd.DataFrame({"a": [1]}), "typo", batch="b", settings=settings)


def test_an_unknown_suite_name_is_an_error(settings):
    with pytest.raises(KeyError, match="no quality suite 'landing_orders'"):
        quality.validate_frame(
            clean_order_lines(), "landing_orders", batch=BATCH, settings=settings
        )


# -- validating landing order lines ----------------------------------------------------------
def test_a_clean_frame_passes_every_rule(settings):
    report = quality.validate_frame(
        clean_order_lines(), "landing_order_lines", batch=BATCH, settings=settings
    )

    assert report.suite == "landing_order_lines"
    assert report.batch == BATCH
    assert report.success is True
    assert report.blocked is False
    assert (report.blocking_failures, report.warnings, report.quarantined) == ([], [], [])
    assert report.evaluated == 17  # with line_under_another_date and implausible_quantity
    assert report.summary().splitlines()[0] == (
        f"Quality check of {BATCH} against suite landing_order_lines: all 17 rules hold"
    )


def _break_one_rule(rule: str) -> pd.DataFrame:
    df = contract_order_lines()
    if rule == "line_number_null":
        df["line_number"] = pd.array([1, 2, 1, None, 2, 1], dtype="Int64")
    elif rule == "quantity_null":
        df["quantity"] = pd.array([2, 1, None, -1, 3, 1], dtype="Int64")
    elif rule == "ordered_at_null":
        df.loc[4, "ordered_at"] = pd.NaT
    elif rule.endswith("_null"):
        df.loc[1, rule.removesuffix("_null")] = None
    elif rule == "quantity_zero":
        df.loc[[0, 2, 5], "quantity"] = 0
    elif rule == "unit_price_negative":
        df.loc[3, "unit_price"] = -2.5
    elif rule == "currency_unknown":
        df.loc[[1, 4], "currency"] = ["XXX", "eur"]
    elif rule == "other_date":
        df.loc[2, "ordered_at"] = pd.Timestamp("2025-02-28 23:30")
    elif rule == "duplicate_line":
        df.loc[1, "line_number"] = 1
    return as_validated(df)


def rows_break_it(count: int, unit: str = "row") -> str:
    """How a message states a count: ``1 row breaks it`` / ``3 rows break it``."""
    return f"{count} {unit} breaks it" if count == 1 else f"{count} {unit}s break it"


# rule -> (quarantine rule id, the rule in plain words, the rows breaking it in pandas terms
# (a column name: its nulls), the examples a message shows: those rows' values in the named
# column(s)). Counts, rows and examples of the expected message come from the frame itself.
ROW_RULES = {
    "order_id_null": ("missing_order_id", "order_id is never missing", "order_id", None),
    "line_number_null": (
        "missing_line_number",
        "line_number is never missing",
        "line_number",
        None,
    ),
    "ordered_at_null": ("missing_ordered_at", "ordered_at is never missing", "ordered_at", None),
    "product_id_null": ("missing_product_id", "product_id is never missing", "product_id", None),
    "quantity_null": ("missing_quantity", "quantity is never missing", "quantity", None),
    "unit_price_null": ("missing_unit_price", "unit_price is never missing", "unit_price", None),
    "currency_null": ("missing_currency", "currency is never missing", "currency", None),
    "quantity_zero": (
        "zero_quantity",
        "quantity is never zero",
        lambda df, settings: df["quantity"] == 0,
        ["quantity"],
    ),
    "unit_price_negative": (
        "negative_price",
        "unit_price is never negative",
        lambda df, settings: df["unit_price"] < 0,
        ["unit_price"],
    ),
    "currency_unknown": (
        "unknown_currency",
        "currency is a known currency code",
        lambda df, settings: ~df["currency"].isin(settings.known_currencies),
        ["currency"],
    ),
    "other_date": (
        "ordered_at_outside_partition_date",
        "ordered_at falls on the partition's date (UTC; shown as ordered date, partition date)",
        lambda df, settings: df["ordered_date"] != df["partition_date"],
        ["ordered_date", "partition_date"],
    ),
    "duplicate_line": (
        "duplicate_line",
        "each (order_id, line_number) appears only once in its partition (later copies are "
        "quarantined; shown as the copy number)",
        lambda df, settings: df.duplicated(["order_id", "line_number"]),
        ["key_occurrence"],
    ),
}


def shown(value) -> str:
    """A value as a message's examples show it (independent of the code under test)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dt.date):
        return repr(value.isoformat())
    return f"{value:g}"


def expected_message(df: pd.DataFrame, description: str, breaks, example_columns) -> str:
    rows = df[breaks]
    message = f"{description}: {rows_break_it(len(rows))}"
    if example_columns:
        values = rows[example_columns].head(5).itertuples(index=False)
        if len(example_columns) == 1:
            examples = [shown(row[0]) for row in values]
        else:
            examples = ["(" + ", ".join(shown(v) for v in row) + ")" for row in values]
        message += f" (e.g. {', '.join(examples)})"
    return message


@pytest.mark.parametrize("rule", sorted(ROW_RULES))
def test_each_row_rule_quarantines_exactly_the_rows_that_break_it(settings, rule):
    quarantine_rule, description, breaks, example_columns = ROW_RULES[rule]
    df = _break_one_rule(rule)
    breaks = df[breaks].isna() if isinstance(breaks, str) else breaks(df, settings)
    assert breaks.any()  # the case breaks its rule at all

    report = quality.validate_frame(df, "landing_order_lines", batch=BATCH, settings=settings)

    assert report.blocked is False
    assert report.warnings == []
    assert [(f.rule, f.severity, f.message()) for f in report.quarantined] == [
        (quarantine_rule, "quarantine", expected_message(df, description, breaks, example_columns))
    ]
    assert report.quarantined_indexes() == set(df.index[breaks])


def test_a_missing_column_blocks_and_reports_each_rule_on_it_as_not_checkable(settings):
    df = clean_order_lines().drop(columns=["quantity"])

    report = quality.validate_frame(df, "landing_order_lines", batch=BATCH, settings=settings)

    assert [f.message() for f in report.blocking_failures] == [
        "every landing contract column is present: missing quantity"
    ]
    assert [f.message() for f in report.quarantined + report.warnings] == [
        'quantity is never missing: could not be checked (The column "quantity" in BatchData '
        "does not exist.)",
        'quantity is never zero: could not be checked (The column "quantity" in BatchData '
        "does not exist.)",
        "quantity stays within 10,000 units per line (an extreme order or its cancellation): "
        'could not be checked (The column "quantity" in BatchData does not exist.)',
    ]


def test_failure_details_carry_count_and_up_to_five_examples(settings):
    df = contract_order_lines()
    df["quantity"] = 0

    report = quality.validate_frame(
        as_validated(df), "landing_order_lines", batch=BATCH, settings=settings
    )

    (failure,) = report.quarantined
    assert failure.unexpected_count == len(df)
    assert failure.unexpected_examples == [0, 0, 0, 0, 0]
    assert failure.description == "quantity is never zero"


def test_guests_and_extreme_quantities_are_warnings(settings):
    df = contract_order_lines()
    df.loc[[0, 1, 3, 4], "customer_id"] = None
    df.loc[5, "quantity"] = 25_000
    guests = df["customer_id"].isna().sum()
    extreme = df.loc[df["quantity"].abs() > 10_000, "quantity"]
    assert guests > len(df) / 2  # more than half are guests: the warning's threshold

    report = quality.validate_frame(
        as_validated(df), "landing_order_lines", batch=BATCH, settings=settings
    )

    assert (report.blocked, report.quarantined) == (False, [])
    assert [f.message() for f in report.warnings] == [
        "at least half of the order lines name a customer (guest lines have none; more guests "
        f"than that hints at a broken customer feed): {rows_break_it(guests)}",
        "quantity stays within 10,000 units per line (an extreme order or its cancellation): "
        f"{rows_break_it(len(extreme))} (e.g. {', '.join(str(q) for q in extreme)})",
    ]


def test_landing_products_and_customers_suites(settings):
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P1", None],
            "name": ["a", "b", "c"],
            "category": ["x", "x", "y"],
            "list_price": [1.0, None, -3.0],
            "first_available_at": pd.to_datetime(["2025-01-01"] * 3),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C2"],
            "created_at": pd.to_datetime(["2025-01-01"] * 3),
            "country": ["UK", "UK", "DE"],
        }
    )

    product_report = quality.validate_frame(
        as_validated(products, "products"),
        "landing_products",
        batch="landing/products/2025-03-01",
        settings=settings,
    )
    customer_report = quality.validate_frame(
        as_validated(customers, "customers"),
        "landing_customers",
        batch="landing/customers/2025-03-01",
        settings=settings,
    )

    assert [(f.rule, f.row_indexes) for f in product_report.quarantined] == [
        ("missing_product_id", (2,)),
        ("duplicate_product", (1,)),
        ("negative_list_price", (2,)),
    ]
    assert [(f.rule, f.row_indexes) for f in customer_report.quarantined] == [
        ("duplicate_customer", (2,))
    ]


def test_the_partitions_suite_blocks_volume_and_quarantine_share_and_warns_extra_columns(
    settings,
):
    summary = pd.DataFrame(
        {
            "partition_date": [f"2025-03-0{day}" for day in range(1, 8)],
            "rows": [100, 10, 50, 5, 30, 40, 40],
            "quarantined_rows": [6, 2, 0, 0, 0, 0, 0],
            "quarantined_share": [0.06, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0],
            "volume_ratio": [1.0, 1.0, 10.0, 0.1, None, None, None],
            "history_volume_ratio": [None, None, None, None, None, 0.09, 1.0],
            "extra_columns": [None, None, None, None, "discount", None, None],
        }
    )

    large = summary["rows"] >= 20
    share = summary.loc[large & (summary["quarantined_share"] > 0.05), "quarantined_share"]
    small = summary.loc[~large & (summary["quarantined_rows"] > 1), "quarantined_rows"]
    spike = summary.loc[summary["volume_ratio"] >= 10, "volume_ratio"]
    drop = summary.loc[summary["volume_ratio"] <= 0.1, "volume_ratio"]
    extra = summary.loc[summary["extra_columns"].notna(), "extra_columns"]

    history_drop = summary.loc[summary["history_volume_ratio"] <= 0.1, "history_volume_ratio"]

    def broken(values: pd.Series) -> str:
        # examples name their partition (the suite's id_columns)
        column = values.name
        examples = ", ".join(
            f"(partition_date={summary.loc[i, 'partition_date']!r}, {column}={shown(v)})"
            for i, v in values.items()
        )
        return f"{rows_break_it(len(values), 'partition')} (e.g. {examples})"

    report = quality.validate_frame(
        summary, "landing_partitions", batch="landing/order_lines/x", settings=settings
    )

    assert [f.message() for f in report.blocking_failures] == [
        "at most 5% of a partition's rows are quarantined (shown as the quarantined share): "
        + broken(share),
        "at most 1 row of a partition under 20 rows is quarantined (shown as the quarantined "
        "rows): " + broken(small),
        "no sudden volume spike: a partition has less than 10x its usual rows (shown as "
        "rows / usual rows): " + broken(spike),
        "no sudden volume drop: a partition has more than 10% of its usual rows (shown as "
        "rows / usual rows): " + broken(drop),
    ]
    assert [f.message() for f in report.warnings] == [
        "history, not blocked: a partition of a first load or backfill has more than 10% of "
        "its usual rows (shown as rows / usual rows): " + broken(history_drop),
        # a null-expectation's examples are its values (GX names no row for it)
        "files carry only the landing contract's columns (extra columns are ignored): "
        f"{rows_break_it(1, 'partition')} (e.g. {shown(extra.iloc[0])})",
    ]


# -- severity --------------------------------------------------------------------------------
@pytest.fixture
def tiny_suite_settings(settings, tmp_path):
    """A suite that warns by default, with one rule overridden to block."""
    project = tmp_path / "project"
    write_suite(
        project,
        {
            "name": "tiny",
            "meta": {"severity": "warning"},
            "expectations": [
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": "a"},
                    "meta": {"description": "a is never missing"},
                },
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "b", "max_value": 10},
                    "meta": {"description": "b is at most 10", "severity": "blocking"},
                },
            ],
        },
    )
    return dataclasses.replace(settings, project_root=project)


def test_suite_severity_applies_and_an_expectation_can_override_it(tiny_suite_settings):
    df = pd.DataFrame({"a": [1.0, None], "b": [5, 11]})
    above = df.loc[df["b"] > 10, "b"]

    report = quality.validate_frame(df, "tiny", batch="tiny/1", settings=tiny_suite_settings)

    assert [f.message() for f in report.warnings] == [
        f"a is never missing: {rows_break_it(df['a'].isna().sum())}"
    ]
    assert [f.message() for f in report.blocking_failures] == [
        f"b is at most 10: {rows_break_it(len(above))} (e.g. {', '.join(map(str, above))})"
    ]
    assert [f.severity for f in report.warnings + report.blocking_failures] == [
        "warning",
        "blocking",
    ]
    assert report.blocked is True


def test_warnings_alone_fail_the_report_but_do_not_block(tiny_suite_settings):
    df = pd.DataFrame({"a": [1.0, None], "b": [5, 6]})

    report = quality.validate_frame(df, "tiny", batch="tiny/1", settings=tiny_suite_settings)

    assert report.success is False
    assert report.blocked is False
    assert report.summary().splitlines()[:2] == [
        "Quality check of tiny/1 against suite tiny: 1 of 2 rules broken (0 blocking, 1 warning)",
        f"  warning: a is never missing: {rows_break_it(df['a'].isna().sum())}",
    ]
    quality.raise_if_blocked([report])  # does not raise


def test_an_edited_suite_file_updates_the_suite_in_the_context(tiny_suite_settings):
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [5, 11]})
    first = quality.validate_frame(df, "tiny", batch="tiny/1", settings=tiny_suite_settings)
    path = tiny_suite_settings.expectations_dir / "suites" / "tiny.json"
    spec = json.loads(path.read_text())
    spec["expectations"][1]["kwargs"]["max_value"] = 20
    path.write_text(json.dumps(spec))

    second = quality.validate_frame(df, "tiny", batch="tiny/1", settings=tiny_suite_settings)

    assert (first.blocked, second.blocked) == (True, False)


def test_a_new_process_with_unchanged_suites_writes_nothing_to_the_context(settings, monkeypatch):
    from shopflow.quality import context as gx_context

    df = clean_order_lines()
    quality.validate_frame(df, "landing_order_lines", batch=BATCH, settings=settings)
    quality.build_data_docs(settings)
    stored = [
        p for p in quality.gx_context_dir(settings).rglob("*.*") if "uncommitted" not in p.parts
    ]
    written = {p: p.stat().st_mtime_ns for p in stored}
    # What a new process starts from: nothing synced yet.
    monkeypatch.setattr(gx_context, "_checkpoints", {})
    monkeypatch.setattr(gx_context, "_synced_suites", {})

    quality.validate_frame(df, "landing_order_lines", batch=BATCH, settings=settings)
    quality.build_data_docs(settings)

    assert {p: p.stat().st_mtime_ns for p in stored} == written
    assert {p.parent.name for p in stored} >= {"checkpoints", "validation_definitions"}


# -- the gate --------------------------------------------------------------------------------
def test_raise_if_blocked_names_batch_rule_data_docs_page_and_row_problems(settings):
    rows = contract_order_lines()
    rows.loc[[0, 2], "quantity"] = 0
    zeros = rows.loc[rows["quantity"] == 0, "quantity"]
    row_report = quality.validate_frame(
        as_validated(rows), "landing_order_lines", batch=BATCH, settings=settings
    )
    summary = pd.DataFrame(
        {
            "partition_date": ["2025-03-01"],
            "rows": [len(rows)],
            "quarantined_rows": [len(zeros)],
            "quarantined_share": [round(len(zeros) / len(rows), 4)],
            "volume_ratio": [None],
            "history_volume_ratio": [None],
            "extra_columns": [None],
        }
    )
    broken = quality.validate_frame(
        summary, "landing_partitions", batch="landing/order_lines/2025-03-01", settings=settings
    )

    with pytest.raises(quality.QualityGateError) as caught:
        quality.raise_if_blocked([row_report, broken])

    assert str(caught.value) == (
        "Data quality gate stopped the run: 1 batch broke blocking rules.\n"
        # the cause first, counted once with a real percentage
        f"Cause: quantity is never zero (rule zero_quantity): {len(zeros)} of {len(rows)} rows "
        f"({100 * len(zeros) / len(rows):.1f} %), e.g. 0\n"
        "  so 1 partition broke the blocking rule: at most 1 row of a partition under 20 rows "
        "is quarantined (shown as the quarantined rows)\n"
        "Details:\n"
        "- landing/order_lines/2025-03-01 (suite landing_partitions):\n"
        "    at most 1 row of a partition under 20 rows is quarantined (shown as the "
        f"quarantined rows): {rows_break_it(len(summary), 'partition')} "
        f"(e.g. (partition_date='2025-03-01', quarantined_rows={len(zeros)}))\n"
        f"    Data Docs: {broken.data_docs_path}\n"
        "Row-level problems (quarantined when the rest of the batch passes):\n"
        f"- {BATCH} (suite landing_order_lines):\n"
        f"    quantity is never zero: {rows_break_it(len(zeros))} "
        f"(e.g. {', '.join(map(str, zeros))})"
    )
    assert caught.value.reports == [row_report, broken]
    assert caught.value.blocked_reports == [broken]


def test_raise_if_blocked_passes_clean_reports(settings):
    report = quality.validate_frame(
        clean_order_lines(), "landing_order_lines", batch=BATCH, settings=settings
    )

    assert quality.raise_if_blocked([report]) is None


# -- where things land -----------------------------------------------------------------------
def test_the_gx_context_lives_in_the_quality_folder_with_analytics_and_progress_bars_off(
    settings,
):
    quality.validate_frame(
        clean_order_lines(), "landing_order_lines", batch=BATCH, settings=settings
    )
    config = (quality.gx_context_dir(settings) / "great_expectations.yml").read_text()

    assert quality.gx_context_dir(settings) == settings.home / "quality" / "gx"
    assert "analytics_enabled: false" in config
    assert "progress_bars:\n  globally: false\n  metric_calculations: false" in config
    stored = json.loads(
        (quality.gx_context_dir(settings) / "expectations" / "landing_order_lines.json").read_text()
    )
    assert [e["meta"]["description"] for e in stored["expectations"]][-1] == (
        "quantity stays within 10,000 units per line (an extreme order or its cancellation)"
    )


def test_build_data_docs_renders_the_page_each_report_points_at(settings):
    reports = [
        quality.validate_frame(
            clean_order_lines(),
            "landing_order_lines",
            batch=f"landing/order_lines/2025-03-0{day}/part-0.parquet",
            settings=settings,
            run_name="scheduled__2025-03-01T00:00:00+00:00",
        )
        for day in (1, 2)
    ]
    assert [r.data_docs_path.exists() for r in reports] == [False, False]

    quality.build_data_docs(settings)

    site = quality.data_docs_index_path(settings).parent
    for report in reports:
        page = report.data_docs_path
        assert page.is_file()
        assert page.relative_to(site).parts[:3] == (
            "validations",
            "landing_order_lines",
            "scheduled__2025-03-01T00_00_00_00_00",
        )
        assert "landing_order_lines" in page.read_text()
    # Each validation has its own page (GX's run time tells two batches of one run apart).
    assert reports[0].data_docs_path != reports[1].data_docs_path


def test_build_data_docs_writes_the_index_listing_the_validations(settings):
    report = quality.validate_frame(
        clean_order_lines(), "landing_order_lines", batch=BATCH, settings=settings
    )

    index = quality.build_data_docs(settings)

    assert index == quality.data_docs_index_path(settings)
    html = index.read_text()
    assert report.data_docs_path.name in html
    assert (index.parent / "expectations" / "landing_order_lines.html").is_file()


def test_the_report_json_is_replaced_on_rerun(settings):
    df = clean_order_lines()
    quality.validate_frame(df, "landing_order_lines", batch=BATCH, settings=settings, run_name="r1")
    df = df.drop(columns=["country"])
    rerun = quality.validate_frame(
        df, "landing_order_lines", batch=BATCH, settings=settings, run_name="r1"
    )

    files = sorted((settings.quality_dir / "reports" / "r1").iterdir())
    assert [f.name for f in files] == [
        "landing_order_lines__landing__order_lines__2025-03-01__part-0.parquet.json"
    ]
    saved = json.loads(files[0].read_text())
    assert (saved["run_name"], saved["batch"], saved["success"], saved["blocked"]) == (
        "r1",
        BATCH,
        False,
        True,
    )
    assert saved["blocking_failures"][0]["unexpected_examples"] == ["country"]
    assert saved["data_docs_path"] == str(rerun.data_docs_path)


def test_validation_never_touches_the_network(settings, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("quality checks must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)

    report = quality.validate_frame(
        clean_order_lines(), "landing_order_lines", batch=BATCH, settings=settings
    )
    quality.build_data_docs(settings)

    assert report.success is True


# -- messages without GX ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            quality.FailedExpectation(
                "expect_column_values_to_be_in_set", "c", "c is known", "blocking", 7, [None, "x"]
            ),
            "c is known: 7 rows break it (e.g. null, 'x')",
        ),
        (
            quality.FailedExpectation(
                "expect_column_values_to_be_between", "p", "p is small", "warning", 1, [1.5e20]
            ),
            "p is small: 1 row breaks it (e.g. 1.5e+20)",
        ),
        (
            quality.FailedExpectation("expect_x", None, "x holds", "blocking", None, []),
            "x holds: failed",
        ),
    ],
)
def test_failure_messages(failure, message):
    assert failure.message() == message


# -- the marts gate (after dbt build) --------------------------------------------------------
@pytest.fixture(scope="module")
def built_marts(tmp_path_factory):
    """A small generated shop ingested and built by dbt as of its last day."""
    from shopflow.dbt import build_warehouse
    from shopflow.generator import ShopSpec, generate_shop
    from shopflow.ingest import ingest_landing

    settings = load_settings({"SHOPFLOW_HOME": str(tmp_path_factory.mktemp("marts") / "home")})
    settings.ensure_dirs()
    spec = ShopSpec(customers=60, products=20, days=40, start=dt.date(2025, 1, 1), seed=5)
    shop = generate_shop(spec, settings.landing_dir)
    ingest_landing(settings, shop.last_date)
    build_warehouse(settings, shop.last_date)
    return settings, shop.last_date


MARTS_SUITES = [
    "marts_referential_integrity",
    "marts_daily_demand",
    "marts_reconciliation",
    "marts_net_units",
]


def test_the_marts_gate_passes_a_clean_build(built_marts):
    settings, day = built_marts

    result = quality.validate_marts(settings, day)

    assert list(result["suites"]) == MARTS_SUITES
    assert Path(result["data_docs"]) == quality.data_docs_index_path(settings)


def test_the_marts_gate_blocks_a_product_sold_but_missing_from_dim_products(built_marts, tmp_path):
    import duckdb

    built, day = built_marts
    settings = load_settings({"SHOPFLOW_HOME": str(tmp_path / "home")})
    shutil.copytree(built.home, settings.home)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        (product,) = con.execute(
            "select min(product_id) from marts.fct_order_lines where ordered_date <= ?", [day]
        ).fetchone()
        con.execute("delete from marts.dim_products where product_id = ?", [product])
    finally:
        con.close()

    with pytest.raises(quality.QualityGateError) as caught:
        quality.validate_marts(settings, day)

    (report,) = caught.value.blocked_reports
    assert (report.suite, report.batch) == (
        "marts_referential_integrity",
        f"marts/marts_referential_integrity/{day}",
    )
    assert [f.message() for f in report.blocking_failures] == [
        "every product sold up to the run date (fct_order_lines) exists in dim_products: "
        f"1 product breaks it (e.g. (product_id={product!r}, found=False))"
    ]
    assert report.data_docs_path.is_file()
