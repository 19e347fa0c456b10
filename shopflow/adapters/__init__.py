"""Source adapters: map a public shop-data format onto the landing contract.

An adapter is a small object with a ``name``, a ``description`` and a ``read(path)`` that
parses one file of its format into contract frames (:class:`AdaptedShop`). Everything else
(partitioning by business date, writing the landing files, replacing them on rerun) is shared
and lives in :func:`load_source`, so adding a source means adding one module and one line in
:data:`ADAPTERS`; the pipeline never changes.

Keep this package cheap to import (Airflow parses DAG files that import it): pandas is only
imported inside functions or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from shopflow.adapters.base import AdaptedShop
from shopflow.adapters.online_retail_ii import OnlineRetailII
from shopflow.landing import write_partition
from shopflow.progress import progress

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ADAPTERS",
    "AdaptedShop",
    "LoadResult",
    "SourceAdapter",
    "get_adapter",
    "load_source",
    "register",
]


@runtime_checkable
class SourceAdapter(Protocol):
    """What every source adapter provides."""

    name: str  # registry key, e.g. "online-retail-ii"
    description: str  # one line, shown by the CLI

    def read(self, path: Path) -> AdaptedShop:
        """Parse one file of the public format into landing-contract frames."""
        ...


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_source` wrote."""

    source: str
    dates_written: int  # order_lines partitions (business dates) written
    order_lines: int
    products: int  # 0 when the adapter derives no products
    customers: int  # 0 when the adapter derives no customers
    report: dict[str, int]
    first_date: dt.date | None = None
    last_date: dt.date | None = None


ADAPTERS: dict[str, SourceAdapter] = {}


def register(adapter: SourceAdapter) -> SourceAdapter:
    """Add ``adapter`` to :data:`ADAPTERS` under its name (names are unique)."""
    if adapter.name in ADAPTERS and ADAPTERS[adapter.name] is not adapter:
        raise ValueError(f"source adapter {adapter.name!r} is already registered")
    ADAPTERS[adapter.name] = adapter
    return adapter


register(OnlineRetailII())


def get_adapter(name: str) -> SourceAdapter:
    """The registered adapter called ``name``; the error lists the known names."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS)) or "(none)"
        raise ValueError(f"unknown source adapter {name!r}; known adapters: {known}") from None


def _partition_by_day(
    frame: pd.DataFrame, column: str, timezone: str = "UTC"
) -> list[tuple[dt.date, pd.DataFrame]]:
    """Split ``frame`` by the local date in ``timezone`` of the naive UTC timestamp ``column``
    (the business date, see docs/design.md, "Landing contract")."""
    if frame.empty:
        return []
    stamps = frame[column]
    if timezone != "UTC":
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(timezone).dt.tz_localize(None)
    days = stamps.dt.normalize()
    return [
        (day.date(), part.reset_index(drop=True)) for day, part in frame.groupby(days, sort=True)
    ]


def load_source(
    source: str | SourceAdapter, path: Path, landing_dir: Path, *, timezone: str = "UTC"
) -> LoadResult:
    """Read ``path`` with ``source`` (a registered adapter's name, or an adapter such as
    :class:`shopflow.adapters.mapping.MappingAdapter`) and write its landing partitions.

    One ``order_lines`` partition per business date: the local date in the shop's
    ``timezone`` (setting ``shop.timezone``) of the UTC ``ordered_at``; products land dated
    at the local date of their ``first_available_at`` and customers of their ``created_at``,
    so a run for date D sees every product and customer its order lines reference, and
    nothing from after D. Each written partition file replaces the one of a previous load (same file
    name, atomic rename): rerunning is idempotent. Partitions of dates the file does not
    cover are left untouched, so several files of one source (e.g. the two overlapping
    Online Retail II sheets) can be loaded one after the other.
    """
    adapter = get_adapter(source) if isinstance(source, str) else source
    path = Path(path)
    landing_dir = Path(landing_dir)
    with progress(f"load {adapter.name}: reading {path.name}"):
        shop = adapter.read(path)

    order_days = _partition_by_day(shop.order_lines, "ordered_at", timezone)
    partitions = [("order_lines", day, part) for day, part in order_days]
    for table, frame, column in (
        ("products", shop.products, "first_available_at"),
        ("customers", shop.customers, "created_at"),
    ):
        if frame is not None:
            partitions += [
                (table, day, part) for day, part in _partition_by_day(frame, column, timezone)
            ]
    with progress(f"load {adapter.name}", total=len(partitions), unit="partitions") as shown:
        for table, day, part in partitions:
            write_partition(part, landing_dir, table, day)
            shown.advance(1, detail=f"{table} {day}")

    return LoadResult(
        source=adapter.name,
        dates_written=len(order_days),
        order_lines=len(shop.order_lines),
        products=0 if shop.products is None else len(shop.products),
        customers=0 if shop.customers is None else len(shop.customers),
        report=dict(shop.report),
        first_date=order_days[0][0] if order_days else None,
        last_date=order_days[-1][0] if order_days else None,
    )
