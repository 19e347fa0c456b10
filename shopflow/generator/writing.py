"""Writing the simulated shop as landing partitions (see docs/design.md, "Landing contract")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from shopflow.generator.catalogue import Catalog
from shopflow.generator.customers import Customers
from shopflow.generator.lines import Lines
from shopflow.generator.profiles import PROFILES, Profile
from shopflow.generator.spec import ShopSpec
from shopflow.landing import write_partition

CURRENCY = PROFILES["wholesale"].currency  # the demo shop's
ID_DIGITS = 8


def order_lines_frame(
    date: dt.date,
    lines: Lines,
    catalog: Catalog,
    customers: Customers,
    profile: Profile = PROFILES["wholesale"],
) -> pd.DataFrame:
    """The ``order_lines`` partition of ``date``, ordered by time and order."""
    lines = lines.take(
        np.lexsort((lines.line_number, lines.order_number, lines.is_return, lines.second))
    )
    prefix = pd.Series(np.where(lines.is_return, "R", "O"), dtype="str")
    number = pd.Series(lines.order_number, dtype="int64").astype("str").str.zfill(ID_DIGITS)
    return pd.DataFrame(
        {
            "order_id": prefix + number,
            "line_number": lines.line_number.astype(np.int32),
            "ordered_at": timestamps(date, lines.second),
            "customer_id": pd.Series(customers.ids[lines.customer], dtype="str"),
            "product_id": pd.Series(catalog.ids[lines.product], dtype="str"),
            "quantity": lines.quantity.astype(np.int32),
            "unit_price": lines.price.astype(np.float64),
            "currency": pd.Series([profile.currency] * len(lines.product), dtype="str"),
            "country": pd.Series(
                np.asarray(profile.countries, dtype=object)[lines.country], dtype="str"
            ),
        }
    )


def write_products(spec: ShopSpec, catalog: Catalog, landing_dir: Path) -> int:
    """One partition per launch date; list_price is the launch price."""
    category_names = np.array([c.name for c in catalog.categories], dtype=object)
    written = 0
    for day in np.unique(catalog.launch_day):
        members = np.flatnonzero(catalog.launch_day == day)
        date = spec.start + dt.timedelta(days=int(day))
        frame = pd.DataFrame(
            {
                "product_id": pd.Series(catalog.ids[members], dtype="str"),
                "name": pd.Series(catalog.names[members], dtype="str"),
                "category": pd.Series(category_names[catalog.category[members]], dtype="str"),
                "list_price": catalog.list_price[members].astype(np.float64),
                "first_available_at": timestamps(date, np.zeros(len(members), dtype=np.int64)),
            }
        )
        write_partition(frame, landing_dir, "products", date)
        written += 1
    return written


def write_customers(
    spec: ShopSpec,
    customers: Customers,
    landing_dir: Path,
    profile: Profile = PROFILES["wholesale"],
) -> int:
    """One partition per sign-up date."""
    countries = np.asarray(profile.countries, dtype=object)
    written = 0
    for day in np.unique(customers.created_day):
        members = np.flatnonzero(customers.created_day == day)
        date = spec.start + dt.timedelta(days=int(day))
        frame = pd.DataFrame(
            {
                "customer_id": pd.Series(customers.ids[members], dtype="str"),
                "created_at": timestamps(date, customers.created_second[members]),
                "country": pd.Series(countries[customers.country[members]], dtype="str"),
            }
        )
        write_partition(frame, landing_dir, "customers", date)
        written += 1
    return written


def timestamps(date: dt.date, seconds: np.ndarray) -> np.ndarray:
    """UTC-naive timestamps (microsecond unit) at ``seconds`` after midnight of ``date``."""
    return np.datetime64(date, "us") + seconds.astype("timedelta64[s]")
