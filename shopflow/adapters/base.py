"""What every source adapter returns: one source file mapped onto the landing contract.

Its own module so that the adapters and the package that lists them import it without
importing each other. Cheap to import: pandas only under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shopflow.landing import CONTRACT

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass
class AdaptedShop:
    """A source file mapped onto the landing contract.

    ``order_lines`` (and ``products`` / ``customers`` when given) carry exactly the contract
    columns of :data:`shopflow.landing.CONTRACT`, in contract order. ``report`` counts what
    each adapter rule did (rows read, dropped per rule, kept per kind) for the CLI to print.
    """

    order_lines: pd.DataFrame
    products: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    report: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entity in ("order_lines", "products", "customers"):
            frame = getattr(self, entity)
            if frame is None:
                continue
            expected = list(CONTRACT[entity])
            if list(frame.columns) != expected:
                raise ValueError(
                    f"adapted {entity} columns {list(frame.columns)} do not match the landing "
                    f"contract {expected}"
                )
