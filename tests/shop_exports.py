"""A shop's own exports made from a generated shop: the input of the mapping tests.

The generated landing files are split into the tables a shop system exports (orders, order
items, customers, products) with the shop's own column names, a ``status`` whose cancelled
orders a mapping filters out, prices as Brazilian CSV writes them (``;`` and decimal ``,``),
and naive timestamps: the generator's times of day read as wall-clock times of
:data:`TIMEZONE`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TIMEZONE = "America/Sao_Paulo"
CANCEL_EVERY = 11  # every 11th order is cancelled


def read_landing(landing: Path, entity: str) -> pd.DataFrame:
    """Every partition of ``entity``, with its folder's date as ``partition_date``."""
    parts = [
        pd.read_parquet(folder).assign(partition_date=folder.name)
        for folder in sorted((landing / entity).iterdir())
        if folder.is_dir()
    ]
    return pd.concat(parts, ignore_index=True)


def local_to_utc(stamps: pd.Series) -> pd.Series:
    """Naive wall-clock times of TIMEZONE as naive UTC."""
    return stamps.dt.tz_localize(TIMEZONE).dt.tz_convert("UTC").dt.tz_localize(None)


def write_exports(landing: Path, out: Path) -> set[str]:
    """Write orders.csv, order_items.csv, customers.csv and products.parquet into ``out``
    from the shop generated in ``landing``; returns the ids of the cancelled orders."""
    out.mkdir(parents=True, exist_ok=True)
    lines = read_landing(landing, "order_lines")
    orders = lines.drop_duplicates("order_id").sort_values("order_id").reset_index(drop=True)
    cancelled = orders.index % CANCEL_EVERY == CANCEL_EVERY - 1
    pd.DataFrame(
        {
            "id": orders["order_id"],
            "placed_at": orders["ordered_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "buyer": orders["customer_id"],
            "ship_country": orders["country"],
            "status": ["cancelled" if c else "paid" for c in cancelled],
        }
    ).to_csv(out / "orders.csv", index=False)
    pd.DataFrame(
        {
            "order_ref": lines["order_id"],
            "pos": lines["line_number"],
            "sku": lines["product_id"],
            "qty": lines["quantity"],
            "price": lines["unit_price"],
        }
    ).to_csv(out / "order_items.csv", index=False, sep=";", decimal=",")
    customers = read_landing(landing, "customers")
    pd.DataFrame(
        {
            "customer_no": customers["customer_id"],
            "signed_up": customers["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "country": customers["country"],
        }
    ).to_csv(out / "customers.csv", index=False)
    products = read_landing(landing, "products")
    pd.DataFrame(
        {
            "sku": products["product_id"],
            "title": products["name"],
            "category": products["category"],
            "price": products["list_price"],
            "launched_at": products["first_available_at"],
        }
    ).to_parquet(out / "products.parquet", index=False)
    return set(orders.loc[cancelled, "order_id"])
