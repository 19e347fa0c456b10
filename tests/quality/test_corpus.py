"""The bad-input corpus: each broken landing batch, its outcome, its exact message, and
proof that the previous date's published exports are byte-identical afterwards.

One baseline home is built per module: the generated shop ``corpus.SPEC`` run through every
nightly step for BASELINE_DAY (plain functions, not Airflow). Each case copies that home,
drops its files into ``landing/order_lines/<DAY>/`` and runs the nightly steps for DAY until
one fails. Cases that pass the gate stop after ``ingest_landing`` (the steps after it are the
same as on any clean night), except ``negative_price``, which runs the whole night through
``publish_exports`` to show that a quarantined line does not stop the run.
The table of cases is in docs/runbooks/quality_gate.md.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from shopflow.generator import generate_shop
from shopflow.ingest import LandingFormatError
from shopflow.jobs.steps import NIGHTLY_STEPS
from shopflow.quality import QualityGateError
from tests.conftest import make_settings
from tests.quality.corpus import BASELINE_DAY, CORPUS_DIR, DAY, SPEC

BLOCKED, QUARANTINED, WARNED = "blocked", "quarantined", "warned"
FOLDER = f"landing/order_lines/{DAY}"
CSV = f"{FOLDER}/orders.csv"
PUBLISHED_TABLES = ("recommendations", "demand_forecast")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("corpus") / "baseline")
    settings.ensure_dirs()
    generate_shop(SPEC, settings.landing_dir)
    # DAY's order lines are what each case replaces.
    shutil.rmtree(settings.landing_dir / "order_lines" / DAY.isoformat())
    for step in NIGHTLY_STEPS.values():
        step(settings, BASELINE_DAY)
    return settings


def published(settings) -> dict:
    """Every published byte and row of BASELINE_DAY, and which run dates exist at all."""
    files = {
        str(path.relative_to(settings.exports_dir)): path.read_bytes()
        for path in sorted(settings.exports_dir.glob(f"*/run_date={BASELINE_DAY}/**/*"))
        if path.is_file()
    }
    con = duckdb.connect(str(settings.published_db_path), read_only=True)
    try:
        rows = {
            table: con.execute(
                f"select * from exports.{table} where run_date = ? order by all", [BASELINE_DAY]
            ).fetchall()
            for table in PUBLISHED_TABLES
        }
        dates = con.execute(
            "select distinct run_date from exports.recommendations order by 1"
        ).fetchall()
    finally:
        con.close()
    parquet_dates = sorted({p.name for p in settings.exports_dir.glob("*/run_date=*")})
    return {"files": files, "rows": rows, "dates": dates, "parquet_dates": parquet_dates}


@dataclass
class Outcome:
    settings: object
    error: Exception | None
    results: dict = field(default_factory=dict)


def run_case(baseline, tmp_path: Path, case: str, until: str = "ingest_landing") -> Outcome:
    settings = make_settings(tmp_path / "home")
    shutil.copytree(baseline.home, settings.home)
    target = settings.landing_dir / "order_lines" / DAY.isoformat()
    shutil.copytree(CORPUS_DIR / case, target)
    outcome = Outcome(settings, None)
    for name, step in NIGHTLY_STEPS.items():
        try:
            outcome.results[name] = step(settings, DAY)
        except Exception as exc:  # the case's outcome, asserted by the test
            outcome.error = exc
            break
        if name == until:
            break
    return outcome


def warehouse_rows(settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def day_rows(settings) -> int:
    return warehouse_rows(
        settings, f"select count(*) from raw.order_lines where _partition_date = '{DAY}'"
    )[0][0]


def quarantine(settings) -> list[tuple]:
    return warehouse_rows(
        settings,
        "select partition_date, source_file, source_line, rule, run_date "
        "from quality.quarantine order by all",
    )


def gate_message(error: QualityGateError) -> str:
    """The error text with its Data Docs lines checked and then left out (they hold a time)."""
    for report in error.blocked_reports:
        assert f"    Data Docs: {report.data_docs_path}" in str(error)
        assert report.data_docs_path.is_file()
    return "\n".join(line for line in str(error).splitlines() if "Data Docs: " not in line)


BASE_COLUMNS = "order_id, line_number, ordered_at, customer_id, product_id, quantity, unit_price"
FORMAT_CASES = {
    "missing_column": (
        f"{CSV}: missing required column(s) unit_price (found: {BASE_COLUMNS.replace(', unit_price', '')}, currency, country)"  # noqa: E501
    ),
    "renamed_column": (
        f"{CSV}: missing required column(s) unit_price (found: {BASE_COLUMNS.replace('unit_price', 'price')}, currency, country); "  # noqa: E501
        "not in the contract: price (renamed?)"
    ),
    "wrong_type": f"{CSV}: column quantity must be INTEGER; bad values at line 5: 'three'",
    "empty_file": (
        f"{CSV}: the file is empty (0 bytes); a CSV needs a header line and order lines"
    ),
    "truncated_last_line": (
        f"{CSV}: the last line (line 108) is cut off: it has 3 of 9 fields; the file looks "
        "truncated (an interrupted upload?): re-send the whole file"
    ),
    "non_utf8": (
        f"{CSV}: not UTF-8 text: byte 0xf1 at line 7 cannot be decoded (the landing contract "
        "expects UTF-8; re-export the file as UTF-8)"
    ),
    "semicolon_delimiter": (
        f"{CSV}: not comma-separated: the header line is separated by ';' (semicolon); the "
        "landing contract expects ',' between columns"
    ),
    "parquet_wrong_type": (
        f"{FOLDER}/part-0.parquet: column quantity must be INTEGER; bad values at row 3: '2 units'"
    ),
}


@pytest.mark.parametrize("case", sorted(FORMAT_CASES))
def test_an_unreadable_file_is_blocked_with_a_message_naming_file_and_problem(
    baseline, tmp_path, case
):
    before = published(baseline)

    outcome = run_case(baseline, tmp_path, case)

    assert isinstance(outcome.error, LandingFormatError)
    assert str(outcome.error) == FORMAT_CASES[case]
    assert outcome.results == {}
    assert day_rows(outcome.settings) == 0
    assert published(outcome.settings) == before


def corpus_lines(case: str) -> pd.DataFrame:
    """A case's order lines as the shop sent them (every field as text)."""
    return pd.read_csv(CORPUS_DIR / case / "orders.csv", dtype=str, keep_default_na=False)


def rows_break_it(count: int) -> str:
    return f"{count} row breaks it" if count == 1 else f"{count} rows break it"


# The counts in the expected messages come from the cases' own files.
_SHIFTED = corpus_lines("timestamps_from_another_date")
_SHIFTED_DATES = _SHIFTED["ordered_at"].str[:10]
_SHIFTED_OFF = _SHIFTED_DATES[_SHIFTED_DATES != DAY.isoformat()]
_PRICED = corpus_lines("many_negative_prices")
_NEGATIVE = _PRICED["unit_price"].astype(float)[lambda price: price < 0]

SETTING = (
    "  Setting: {key} in $SHOPFLOW_HOME/shopflow.toml changes this rule (`shopflow config show` "
    "prints its value and file)\n"
)
VOLUME_DROP = (
    "no sudden volume drop: a partition has more than 10% of its usual rows (shown as rows / "
    "usual rows)"
)
VOLUME_SPIKE = (
    "no sudden volume spike: a partition has less than 10x its usual rows (shown as rows / "
    "usual rows)"
)
SHARE_RULE = "at most 5% of a partition's rows are quarantined (shown as the quarantined share)"


def _volume_case(rule: str, key: str, ratio: str) -> str:
    """A volume block: the cause first (counted once, with its share), then the details."""
    example = f"(partition_date='{DAY}', volume_ratio={ratio})"
    return (
        "Data quality gate stopped the run: 1 batch broke blocking rules.\n"
        f"Cause: {rule}: 1 of 1 partition (100.0 %), e.g. {example}\n"
        + SETTING.format(key=key)
        + "Details:\n"
        f"- {FOLDER} ({CSV}) (suite landing_partitions):\n"
        f"    {rule}: 1 partition breaks it (e.g. {example})"
    )


def _share_case(cause: str, rule: str, count: int, total: int, examples, details: str) -> str:
    """A block for the share of quarantined rows: the row rule behind it first."""
    share = round(count / total, 4)
    return (
        "Data quality gate stopped the run: 1 batch broke blocking rules.\n"
        f"Cause: {cause} (rule {rule}): {count} of {total} rows ({100 * count / total:.1f} %) "
        f"in 1 partition, e.g. {', '.join(list(dict.fromkeys(examples[:5]))[:3])}\n"
        f"  so 1 partition broke the blocking rule: {SHARE_RULE}\n"
        + SETTING.format(key="quality.max_quarantined_share")
        + "Details:\n"
        f"- {FOLDER} ({CSV}) (suite landing_partitions):\n"
        f"    {SHARE_RULE}: 1 partition breaks it "
        f"(e.g. (partition_date='{DAY}', quarantined_share={share:g}))\n"
        "Row-level problems (quarantined when the rest of the batch passes):\n"
        f"- {FOLDER} (suite landing_order_lines):\n"
        f"    {details}"
    )


_SHIFTED_EXAMPLES = [f"('{date}', '{DAY}')" for date in _SHIFTED_OFF]
_PRICE_EXAMPLES = [f"{price:g}" for price in _NEGATIVE]
GATE_CASES = {
    "header_only": _volume_case(VOLUME_DROP, "quality.volume_drop_ratio", "0"),
    "volume_drop_90pct": _volume_case(VOLUME_DROP, "quality.volume_drop_ratio", "0.04"),
    "volume_spike_10x": _volume_case(VOLUME_SPIKE, "quality.volume_spike_ratio", "51.88"),
    "timestamps_from_another_date": _share_case(
        "ordered_at falls on the partition's date (UTC; shown as ordered date, partition date)",
        "ordered_at_outside_partition_date",
        len(_SHIFTED_OFF),
        len(_SHIFTED),
        _SHIFTED_EXAMPLES,
        "ordered_at falls on the partition's date (UTC; shown as ordered date, partition "
        f"date): {rows_break_it(len(_SHIFTED_OFF))} (e.g. {', '.join(_SHIFTED_EXAMPLES[:5])})",
    ),
    "many_negative_prices": _share_case(
        "unit_price is never negative",
        "negative_price",
        len(_NEGATIVE),
        len(_PRICED),
        _PRICE_EXAMPLES,
        f"unit_price is never negative: {rows_break_it(len(_NEGATIVE))} "
        f"(e.g. {', '.join(_PRICE_EXAMPLES[:5])})",
    ),
}


@pytest.mark.parametrize("case", sorted(GATE_CASES))
def test_a_batch_breaking_a_blocking_rule_is_blocked_and_nothing_changes(baseline, tmp_path, case):
    before = published(baseline)

    outcome = run_case(baseline, tmp_path, case)

    assert isinstance(outcome.error, QualityGateError)
    message = gate_message(outcome.error).replace(str(outcome.settings.home), "$SHOPFLOW_HOME")
    assert message == GATE_CASES[case]
    assert day_rows(outcome.settings) == 0
    assert quarantine(outcome.settings) == []
    assert published(outcome.settings) == before


# case -> (quarantined (line, rule) pairs, warnings); every other line of the file loads
PASSING_CASES = {
    "duplicated_lines": ([(12, "duplicate_line"), (13, "duplicate_line")], []),
    "negative_price": ([(8, "negative_price")], []),
    "a_timestamp_from_another_date": ([(4, "ordered_at_outside_partition_date")], []),
    "unknown_currency": ([(10, "unknown_currency")], []),
    "null_order_ids": ([(6, "missing_order_id"), (11, "missing_order_id")], []),
    "zero_quantity": ([(3, "zero_quantity")], []),
    "extra_column": (
        [],
        [
            "files carry only the landing contract's columns (extra columns are ignored): "
            "1 partition breaks it (e.g. 'discount')"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(PASSING_CASES))
def test_a_batch_with_a_few_bad_lines_quarantines_them_and_loads_the_rest(baseline, tmp_path, case):
    quarantined, warnings = PASSING_CASES[case]
    before = published(baseline)

    outcome = run_case(baseline, tmp_path, case)

    assert outcome.error is None
    assert day_rows(outcome.settings) == len(corpus_lines(case)) - len(quarantined)
    assert quarantine(outcome.settings) == [
        (DAY, CSV, line, rule, DAY) for line, rule in quarantined
    ]
    assert outcome.results["ingest_landing"]["rows_quarantined"]["order_lines"] == len(quarantined)
    reports = [r for r in _reports(outcome.settings) if r["warnings"]]
    assert [w for r in reports for w in r["warnings"]] == warnings
    assert published(outcome.settings) == before


def _reports(settings) -> list[dict]:
    import json

    folder = settings.quality_dir / "reports" / f"nightly_{DAY}"
    reports = [json.loads(p.read_text()) for p in sorted(folder.glob("landing_*.json"))]
    for report in reports:
        report["warnings"] = [_message(w) for w in report["warnings"]]
    return reports


def _message(failure: dict) -> str:
    from shopflow.quality import FailedExpectation

    keep = {k: v for k, v in failure.items() if k in FailedExpectation.__dataclass_fields__}
    return FailedExpectation(**keep).message()


def test_a_quarantined_line_does_not_stop_the_night_and_yesterday_stays_intact(baseline, tmp_path):
    before = published(baseline)

    outcome = run_case(baseline, tmp_path, "negative_price", until="publish_exports")

    assert outcome.error is None
    after = published(outcome.settings)
    assert after["files"] == before["files"]
    assert after["rows"] == before["rows"]
    assert after["dates"] == [*before["dates"], (DAY,)]
    assert after["parquet_dates"] == [f"run_date={BASELINE_DAY}", f"run_date={DAY}"]
