"""Online Retail II (UCI) source adapter: ``online-retail-ii``.

Source: Chen, D. (2012), "Online Retail II", UCI Machine Learning Repository,
doi:10.24432/C5CG6D (CC BY 4.0). One row per invoice line of a UK gift-ware web shop; columns
``Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country``.

Rules, applied in this order. Each is decided once, here; the dbt staging model's YAML repeats
them. ``report`` keys are given in brackets; the counts in parentheses are those on the
published 2009-2010 sheet (525,461 rows).

1. Input. A ``.csv`` (every column read as text; UTF-8, Latin-1 as fallback) or a ``.parquet``
   file as published. All eight columns are required; a missing one is an error naming the
   file and the column. Other columns are ignored. [``rows_read``] (525,461)
2. Incomplete rows, i.e. with no Invoice, StockCode, Quantity, InvoiceDate or Price, are
   dropped. A value that is present but cannot be parsed (a non-integer quantity, a date in an
   unknown format) is an error naming the file, the column and examples.
   [``dropped_incomplete``] (0)
3. ``A`` invoices (bad-debt adjustments, negative price, stock code ``B``) are not sales:
   dropped. [``dropped_adjustment_invoices``] (3)
4. Exact duplicate lines (all eight columns equal after parsing) are dropped; the first one is
   kept. [``dropped_exact_duplicates``] (6,865)
5. Quantity 0 is dropped (the contract's quantity is nonzero). [``dropped_zero_quantity``] (0)
6. Price 0 is dropped, whatever the sign of the quantity: such lines carry no revenue. They
   are stock write-offs (negative quantity, descriptions like "damaged", "missing", "?" or
   "nan", no customer) and free items or corrections on positive quantities, almost all
   without a customer. [``dropped_zero_price``] (3,681)
7. Any other negative price is dropped (none outside ``A`` invoices in the published data).
   [``dropped_negative_price``] (0)
8. ``C`` invoices (cancellations and returns) are kept: the contract's "negative quantity =
   return or cancellation". Their quantity is already negative; the rare line with a positive
   quantity on a ``C`` invoice (C496350, code ``M``, +1) gets its sign flipped.
   [``cancellation_lines``] (10,182), [``cancellation_sign_fixed``] (1). Extreme single orders
   and their cancellations are kept as two lines each (e.g. invoice 518505 of 2010-08-09,
   4,608 units of 16046 among others, reversed by C524235 on 2010-09-28; or the 80,995-unit
   order of the 2010-2011 sheet, cancelled straight after): they net out, and the warehouse
   nets sales against cancellations.
9. Non-product stock codes (postage, carriage, manual, discount, fees, adjustments, samples,
   test items, gift vouchers; see :func:`is_non_product_code`) are kept in ``order_lines``:
   they are real lines of the shop's invoices and affect revenue. The warehouse mirrors
   :data:`NON_PRODUCT_CODE_REGEX` (:func:`non_product_code_sql`) to flag them
   ``is_sellable = false``. [``non_product_lines``] (2,938)
10. ``InvoiceDate`` is UK local time (Europe/London) and becomes naive UTC ``ordered_at``;
    the business date is its local date in the shop's time zone (``shop.timezone``, UTC by
    default; see :func:`shopflow.adapters.load_source`). A time in the repeated hour when the
    clocks go back is read as the first one (BST); a time in the skipped hour when they go
    forward as GMT.
    [``local_times_ambiguous``] (0), [``local_times_nonexistent``] (0)
11. Mapping: ``order_id`` = Invoice as text; ``line_number`` = 1-based position of the line
    within its invoice in file order, counted after rules 2-7 (dense and unique per order);
    ``customer_id`` = Customer ID as integer text ("13085.0" -> "13085"), missing for a guest
    (null, empty or "nan") [``guest_lines``] (104,180); ``product_id`` = StockCode stripped and
    upper-cased ("85123a" -> "85123A", "47503J " -> "47503J"); ``quantity`` = Quantity;
    ``unit_price`` = Price (rounded to 4 decimals); ``currency`` = "GBP"; ``country`` =
    Country. [``order_lines``] (514,912)
12. Products, one per ``product_id`` of the kept lines [``products``] (4,115): ``name`` = the
    latest description seen (by ``ordered_at``, then file order), stripped, skipping missing
    ones (null, empty, "nan"); null if a product never has one. Descriptions change over time
    (RETROSPOT -> RETRO SPOT): the latest is what the shop calls it now. ``category`` = null
    (not in this dataset); ``list_price`` = median unit price over the product's kept lines
    (all positive after rules 6-7); ``first_available_at`` = its earliest kept line (a sale, or
    a cancellation of a sale made before the file starts), so a product lands no later than
    the first line that references it.
13. Customers, one per ``customer_id`` [``customers``] (4,381): ``created_at`` = their earliest
    kept line; ``country`` = their most frequent country over kept lines (most recent on
    ties).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.adapters.base import AdaptedShop

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SOURCE_COLUMNS = (
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
)
SOURCE_TIMEZONE = "Europe/London"
CURRENCY = "GBP"

# Non-product codes seen in the published data (upper-cased), plus CRUK (charity) from the
# 2010-2011 sheet. For reference and tests: detection is by pattern only (below), so that the
# warehouse's SQL and this module agree on codes neither has seen yet.
NON_PRODUCT_CODES = frozenset(
    {
        "POST",  # postage
        "DOT",  # dotcom postage
        "C2",  # carriage
        "C3",  # carriage
        "M",  # manual line
        "D",  # discount
        "S",  # samples
        "B",  # bad-debt adjustment
        "ADJUST",  # manual adjustment
        "ADJUST2",
        "BANK CHARGES",
        "AMAZONFEE",
        "CRUK",  # charity commission
        "PADS",  # cushion pads at a token price
        "TEST001",
        "TEST002",
        "GIFT",
        "GIFT_0001_10",  # gift vouchers (GIFT_0001_<value>)
        "GIFT_0001_20",
        "GIFT_0001_30",
        "GIFT_0001_40",
        "GIFT_0001_50",
        "GIFT_0001_60",
        "GIFT_0001_70",
        "GIFT_0001_80",
        "GIFT_0001_90",
    }
)
# On the stripped, upper-cased code; RE2-compatible so that DuckDB can run it unchanged.
# Codes without any digit, carriage (C<n>), adjustments, test items and gift vouchers...
NON_PRODUCT_CODE_REGEX = r"^([A-Z ]+|C[0-9]+|ADJUST[0-9]*|TEST[0-9]+|GIFT_[0-9]+_[0-9]+)$"
# ...except dotcom-shop products, whose codes may lack digits (DCGSSGIRL "GIRLS PARTY BAG").
SELLABLE_CODE_PREFIXES = ("DCGS",)
_NON_PRODUCT_RE = re.compile(NON_PRODUCT_CODE_REGEX)

_MISSING_TEXT = ("", "nan", "none", "null")
_DATE_FORMATS = (
    "ISO8601",  # 2009-12-01 07:45:00 (the published CSV export)
    "%m/%d/%Y %H:%M",  # 12/1/2009 7:45 (spreadsheet exports, US style)
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",  # 01/12/2009 07:45 (UK style)
    "%d/%m/%Y %H:%M:%S",
)
_DUPLICATE_KEY = (
    "invoice",
    "stock_raw",
    "description_raw",
    "quantity",
    "local_time",
    "price",
    "customer_id",
    "country_raw",
)


def is_non_product_code(code: str | None) -> bool:
    """True for stock codes that are not sellable products (postage, fees, vouchers, ...)."""
    if code is None:
        return True
    normalized = str(code).strip().upper()
    if not normalized:
        return True
    if normalized.startswith(SELLABLE_CODE_PREFIXES):
        return False
    return _NON_PRODUCT_RE.match(normalized) is not None


def non_product_code_sql(column: str) -> str:
    """DuckDB expression equivalent to :func:`is_non_product_code` on ``column``."""
    code = f"upper(trim({column}))"
    prefixes = " or ".join(f"starts_with({code}, '{p}')" for p in SELLABLE_CODE_PREFIXES)
    return (
        f"(coalesce({code}, '') = '' or "
        f"(regexp_full_match({code}, '{NON_PRODUCT_CODE_REGEX}') and not ({prefixes})))"
    )


class OnlineRetailII:
    """Reads the UCI Online Retail II export (CSV or Parquet)."""

    name = "online-retail-ii"
    description = "UCI Online Retail II (UK gift-ware web shop), CSV or Parquet as published"

    def read(self, path: Path) -> AdaptedShop:
        import numpy as np
        import pandas as pd

        path = Path(path)
        raw = _read_raw(path)
        report: dict[str, int] = {"rows_read": len(raw)}

        stock_raw = _as_text(raw["StockCode"])
        local_time = _parse_local_times(raw["InvoiceDate"], path)
        utc_time, ambiguous, nonexistent = _london_to_utc(local_time)
        df = pd.DataFrame(
            {
                "invoice": _blank_to_na(_as_text(raw["Invoice"]).str.strip()),
                "stock_raw": stock_raw,
                "product_id": _blank_to_na(stock_raw.str.strip().str.upper()),
                "description_raw": _as_text(raw["Description"]),
                "quantity": _parse_number(raw["Quantity"], path, "Quantity", integer=True),
                "local_time": local_time,
                "utc_time": utc_time,
                "price": _parse_number(raw["Price"], path, "Price"),
                "customer_id": _customer_ids(raw["Customer ID"]),
                "country_raw": _as_text(raw["Country"]),
                "ambiguous": ambiguous,
                "nonexistent": nonexistent,
            }
        )

        def drop(mask: pd.Series, key: str) -> None:
            nonlocal df
            report[key] = int(mask.sum())
            if report[key]:
                df = df[~mask.to_numpy()]

        required = ["invoice", "product_id", "quantity", "local_time", "price"]
        drop(df[required].isna().any(axis=1), "dropped_incomplete")
        drop(df["invoice"].str.upper().str.startswith("A"), "dropped_adjustment_invoices")
        drop(df.duplicated(subset=list(_DUPLICATE_KEY), keep="first"), "dropped_exact_duplicates")
        drop(df["quantity"] == 0, "dropped_zero_quantity")
        drop(df["price"] == 0, "dropped_zero_price")
        drop(df["price"] < 0, "dropped_negative_price")
        df = df.reset_index(drop=True)

        cancellation = df["invoice"].str.upper().str.startswith("C").to_numpy()
        wrong_sign = cancellation & (df["quantity"] > 0).to_numpy()
        quantity = df["quantity"].to_numpy(dtype="int64")
        quantity = np.where(wrong_sign, -quantity, quantity)
        if np.abs(quantity).max(initial=0) > np.iinfo(np.int32).max:
            raise ValueError(f"{path}: Quantity out of range for the landing contract")

        order_lines = pd.DataFrame(
            {
                "order_id": df["invoice"].astype("str"),
                "line_number": (df.groupby("invoice", sort=False).cumcount() + 1).astype("int32"),
                "ordered_at": df["utc_time"],
                "customer_id": df["customer_id"].astype("str"),
                "product_id": df["product_id"].astype("str"),
                "quantity": quantity.astype("int32"),
                "unit_price": df["price"].round(4).astype("float64"),
                "currency": pd.Series(CURRENCY, index=df.index, dtype="str"),
                "country": _blank_to_na(df["country_raw"].str.strip()).astype("str"),
            }
        )
        report["cancellation_lines"] = int(cancellation.sum())
        report["cancellation_sign_fixed"] = int(wrong_sign.sum())
        report["non_product_lines"] = int(_non_product_mask(order_lines["product_id"]).sum())
        report["guest_lines"] = int(order_lines["customer_id"].isna().sum())
        report["local_times_ambiguous"] = int(df["ambiguous"].sum())
        report["local_times_nonexistent"] = int(df["nonexistent"].sum())
        report["order_lines"] = len(order_lines)

        names = _blank_to_na(df["description_raw"].str.strip())
        products = _products(order_lines, names)
        customers = _customers(order_lines)
        report["products"] = len(products)
        report["customers"] = len(customers)
        return AdaptedShop(
            order_lines=order_lines, products=products, customers=customers, report=report
        )


# -- reading ---------------------------------------------------------------------------------


def _read_raw(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".parquet"] or suffixes[-1:] == [".pq"]:
        import pyarrow.parquet as pq

        found = pq.read_schema(path).names
        _check_columns(path, found)
        return pd.read_parquet(path, columns=list(SOURCE_COLUMNS))
    if ".csv" in suffixes[-2:]:
        for encoding in ("utf-8-sig", "latin-1"):
            try:
                frame = pd.read_csv(
                    path, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding
                )
                break
            except UnicodeDecodeError:
                continue
        frame.columns = [str(c).strip() for c in frame.columns]
        _check_columns(path, list(frame.columns))
        return frame[list(SOURCE_COLUMNS)]
    raise ValueError(f"{path}: unsupported file type (expected .csv or .parquet)")


def _check_columns(path: Path, found: list[str]) -> None:
    missing = [c for c in SOURCE_COLUMNS if c not in found]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise ValueError(
            f"{path}: not an Online Retail II file: missing column(s) {names} "
            f"(expected {list(SOURCE_COLUMNS)}, found {list(found)})"
        )


# -- parsing ---------------------------------------------------------------------------------


def _as_text(series: pd.Series) -> pd.Series:
    """Text as written: whole floats lose their '.0' (a Parquet float column of ids)."""
    from pandas.api import types

    if types.is_float_dtype(series.dtype):
        present = series.dropna()
        if (present % 1 == 0).all():
            return series.astype("Int64").astype("str")
    return series.astype("str")


def _blank_to_na(series: pd.Series) -> pd.Series:
    """Missing markers ('', 'nan', 'None', 'null', any case) become missing."""
    return series.mask(series.str.lower().isin(_MISSING_TEXT))


def _customer_ids(series: pd.Series) -> pd.Series:
    text = _blank_to_na(_as_text(series).str.strip())
    return text.str.replace(r"^(\d+)\.0*$", r"\1", regex=True)


def _parse_number(series: pd.Series, path: Path, column: str, integer: bool = False) -> pd.Series:
    import pandas as pd
    from pandas.api import types

    if types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype):
        values = series.astype("float64")
    else:
        text = _blank_to_na(series.astype("str").str.strip())
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = values.isna() & text.notna()
        if bad.any():
            examples = list(dict.fromkeys(text[bad].head(20)))[:3]
            raise ValueError(f"{path}: column {column!r} has non-numeric values, e.g. {examples}")
    if integer:
        fractional = values.notna() & (values % 1 != 0)
        if fractional.any():
            examples = values[fractional].head(3).tolist()
            raise ValueError(f"{path}: column {column!r} has non-integer values, e.g. {examples}")
    return values


def _parse_local_times(series: pd.Series, path: Path) -> pd.Series:
    """InvoiceDate as timestamps (naive local time, or tz-aware if the file says so)."""
    import pandas as pd
    from pandas.api import types

    if types.is_datetime64_any_dtype(series.dtype):
        return series
    text = _blank_to_na(series.astype("str").str.strip())
    uniques = pd.Series(text.dropna().unique(), dtype="str")
    for fmt in _DATE_FORMATS:
        try:
            parsed = pd.to_datetime(uniques, format=fmt)
            break
        except (ValueError, TypeError):
            continue
    else:
        examples = uniques.head(3).tolist()
        raise ValueError(
            f"{path}: column 'InvoiceDate' has dates in an unknown format, e.g. {examples}"
        )
    lookup = pd.Series(parsed.to_numpy(), index=uniques.to_numpy())
    return pd.Series(lookup.reindex(text.to_numpy()).to_numpy(), index=series.index)


def _london_to_utc(local: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Europe/London wall-clock times to naive UTC (rule 10), with per-row flags.

    Returns (utc, ambiguous, nonexistent). Converts each distinct timestamp once.
    """
    import numpy as np
    import pandas as pd

    if getattr(local.dt, "tz", None) is not None:  # already an instant: keep it
        utc = local.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
        flags = pd.Series(False, index=local.index)
        return utc, flags, flags.copy()
    codes, uniques = pd.factorize(local.astype("datetime64[us]"))
    wall = pd.DatetimeIndex(uniques).as_unit("us")
    n = len(wall)
    as_bst = wall.tz_localize(SOURCE_TIMEZONE, ambiguous=np.ones(n, bool), nonexistent="NaT")
    as_gmt = wall.tz_localize(SOURCE_TIMEZONE, ambiguous=np.zeros(n, bool), nonexistent="NaT")
    nonexistent_u = np.append(np.asarray(as_bst.isna()), False)
    ambiguous_u = np.append(~nonexistent_u[:-1] & np.asarray(as_bst != as_gmt), False)
    utc_u = (
        wall.tz_localize(
            SOURCE_TIMEZONE, ambiguous=np.ones(n, bool), nonexistent=pd.Timedelta(hours=1)
        )
        .tz_convert("UTC")
        .tz_localize(None)
        .as_unit("us")
    )
    # code -1 (missing) picks the appended last element: NaT / False
    values = np.append(utc_u.to_numpy(), np.datetime64("NaT", "us"))
    return (
        pd.Series(values[codes], index=local.index, dtype="datetime64[us]"),
        pd.Series(ambiguous_u[codes], index=local.index),
        pd.Series(nonexistent_u[codes], index=local.index),
    )


def _non_product_mask(product_ids: pd.Series) -> pd.Series:
    import pandas as pd

    uniques = product_ids.dropna().unique()
    flags = pd.Series([is_non_product_code(c) for c in uniques], index=uniques, dtype=bool)
    return product_ids.map(flags).fillna(True).astype(bool)


# -- derived entities ------------------------------------------------------------------------


def _products(order_lines: pd.DataFrame, names: pd.Series) -> pd.DataFrame:
    import pandas as pd

    lines = pd.DataFrame(
        {
            "product_id": order_lines["product_id"],
            "ordered_at": order_lines["ordered_at"],
            "unit_price": order_lines["unit_price"],
            "name": names.to_numpy(),
        }
    )
    by_product = lines.groupby("product_id", sort=True)
    latest_name = (
        lines.sort_values("ordered_at", kind="stable").groupby("product_id", sort=True)["name"]
    ).last()
    products = pd.DataFrame(
        {
            "name": latest_name,
            "list_price": by_product["unit_price"].median().round(4),
            "first_available_at": by_product["ordered_at"].min(),
        }
    ).reset_index()
    return pd.DataFrame(
        {
            "product_id": products["product_id"].astype("str"),
            "name": products["name"].astype("str"),
            "category": pd.Series(None, index=products.index, dtype="str"),
            "list_price": products["list_price"].astype("float64"),
            "first_available_at": products["first_available_at"].astype("datetime64[us]"),
        }
    )


def _customers(order_lines: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    known = order_lines[order_lines["customer_id"].notna()]
    created = known.groupby("customer_id", sort=True)["ordered_at"].min()
    countries = (
        known[known["country"].notna()]
        .groupby(["customer_id", "country"], sort=False)["ordered_at"]
        .agg(["size", "max"])
        .reset_index()
        .sort_values(
            ["customer_id", "size", "max", "country"],
            ascending=[True, False, False, True],
            kind="stable",
        )
        .drop_duplicates("customer_id")
        .set_index("customer_id")["country"]
    )
    return pd.DataFrame(
        {
            "customer_id": pd.Series(created.index, dtype="str"),
            "created_at": pd.Series(created.to_numpy(), dtype="datetime64[us]"),
            "country": pd.Series(countries.reindex(created.index).to_numpy(), dtype="str"),
        }
    )
