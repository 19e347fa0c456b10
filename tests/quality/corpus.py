"""The bad-input corpus: broken landing batches for one business date, committed as files.

Every case is a folder ``corpus/<case>/`` holding what a shop might drop into
``landing/order_lines/<DAY>/`` for business date DAY (the day after the baseline run of
``tests/quality/test_corpus.py``). The files are committed; this module documents how they
were made and rebuilds them byte for byte::

    .venv/bin/python -m tests.quality.corpus

The clean base is the generated shop ``SPEC``'s order lines of its last four days, moved to
DAY (time of day kept, order ids prefixed with N): about 110 lines, a few times the shop's
usual daily volume, so one or two bad lines are a few percent of the batch and the volume
rules see a normal day.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from shopflow.generator import ShopSpec, generate_shop

SPEC = ShopSpec(customers=300, products=20, days=150, start=dt.date(2025, 1, 1), seed=7)
DAY = SPEC.start + dt.timedelta(days=SPEC.days - 1)  # the broken batch's business date
BASELINE_DAY = DAY - dt.timedelta(days=1)  # the baseline run publishes this date
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
FILE = "orders.csv"


def clean_base() -> pd.DataFrame:
    """About 50 clean order lines dated DAY, in the landing contract's column order."""
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        generate_shop(SPEC, landing)
        days = [DAY - dt.timedelta(days=n) for n in range(3, -1, -1)]
        frames = [pd.read_parquet(landing / "order_lines" / d.isoformat()) for d in days]
    base = pd.concat(frames, ignore_index=True)
    # Lines of earlier days are already loaded by the baseline: new order ids keep them new.
    base["order_id"] = "N" + base["order_id"]
    base["ordered_at"] = pd.to_datetime(DAY.isoformat()) + (
        base["ordered_at"] - base["ordered_at"].dt.normalize()
    )
    return base.sort_values(["ordered_at", "order_id", "line_number"]).reset_index(drop=True)


def _csv(frame: pd.DataFrame, **kwargs) -> str:
    return frame.to_csv(index=False, lineterminator="\n", **kwargs)


def build_cases(base: pd.DataFrame) -> dict[str, dict[str, bytes]]:
    """case -> {file name: bytes}."""
    text = _csv(base)
    header, *lines = text.splitlines(keepends=True)
    cases: dict[str, dict[str, bytes]] = {}

    def put(case: str, data: str | bytes, name: str = FILE) -> None:
        cases[case] = {name: data.encode() if isinstance(data, str) else data}

    put("missing_column", _csv(base.drop(columns=["unit_price"])))
    put("renamed_column", _csv(base.rename(columns={"unit_price": "price"})))
    put("extra_column", _csv(base.assign(discount=0.0)))
    wrong = base.astype({"quantity": "object"})
    wrong.loc[3, "quantity"] = "three"
    put("wrong_type", _csv(wrong))
    put("empty_file", b"")
    put("header_only", header)
    put("truncated_last_line", header + "".join(lines[:-1]) + lines[-1][:25])
    latin = base.copy()
    latin.loc[5, "country"] = "España"
    put("non_utf8", _csv(latin).encode("latin-1"))
    put("duplicated_lines", header + "".join(lines[:10] + lines[7:9] + lines[10:]))
    negative = base.copy()
    negative.loc[6, "unit_price"] = -4.99
    put("negative_price", _csv(negative))
    other_date = base.copy()
    other_date["ordered_at"] = other_date["ordered_at"] - pd.Timedelta(days=2)
    put("timestamps_from_another_date", _csv(other_date))
    some_other = base.copy()
    some_other.loc[2, "ordered_at"] = some_other.loc[2, "ordered_at"] + pd.Timedelta(days=1)
    put("a_timestamp_from_another_date", _csv(some_other))
    currency = base.copy()
    currency.loc[8, "currency"] = "XYZ"
    put("unknown_currency", _csv(currency))
    null_ids = base.copy()
    null_ids.loc[[4, 9], "order_id"] = None
    put("null_order_ids", _csv(null_ids))
    zero = base.copy()
    zero.loc[1, "quantity"] = 0
    put("zero_quantity", _csv(zero))
    many_bad = base.copy()
    many_bad.loc[0:9, "unit_price"] = -1.0
    put("many_negative_prices", _csv(many_bad))
    spike = pd.concat(
        [base.assign(order_id=base["order_id"] + f"-{n}") for n in range(12)], ignore_index=True
    )
    put("volume_spike_10x", _csv(spike))
    put("volume_drop_90pct", header + lines[0])
    put("semicolon_delimiter", _csv(base, sep=";"))
    parquet = base.astype({"quantity": "str"})
    parquet.loc[2, "quantity"] = "2 units"
    buffer = tempfile.SpooledTemporaryFile()
    parquet.to_parquet(buffer, index=False)
    buffer.seek(0)
    put("parquet_wrong_type", buffer.read(), name="part-0.parquet")
    return cases


def write_corpus(target: Path = CORPUS_DIR) -> list[str]:
    """(Re)write every case folder under ``target``; returns the case names."""
    cases = build_cases(clean_base())
    for case, files in cases.items():
        folder = target / case
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    return sorted(cases)


if __name__ == "__main__":
    print("\n".join(write_corpus()))
