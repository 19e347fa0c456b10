"""Order lines as parallel arrays: what one day of sales or returns amounts to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lines:
    """Order lines of one day (or returns pending for a day), as parallel arrays."""

    is_return: np.ndarray  # bool
    order_number: np.ndarray  # int, running number of the O or R series
    line_number: np.ndarray  # int, 1-based within the order
    second: np.ndarray  # int, second of the day
    customer: np.ndarray  # int, customer index or the guest index
    product: np.ndarray  # int
    quantity: np.ndarray  # int, negative for returns
    price: np.ndarray  # float
    country: np.ndarray  # int

    def take(self, index: np.ndarray) -> Lines:
        """The lines at ``index`` (a boolean mask or positions), in that order."""
        return Lines(**{name: getattr(self, name)[index] for name in LINE_FIELDS})


LINE_FIELDS = tuple(Lines.__dataclass_fields__)


def concat_lines(parts: list[Lines]) -> Lines:
    """``parts`` one after the other."""
    return Lines(
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in LINE_FIELDS}
    )


def count_orders(lines: Lines) -> int:
    """Orders among ``lines`` (each order has one line number 1)."""
    return int(np.count_nonzero(lines.line_number == 1))


def empty_lines() -> Lines:
    """No lines (a day without returns)."""
    ints = np.zeros(0, dtype=np.int64)
    return Lines(
        is_return=np.zeros(0, dtype=bool),
        order_number=ints,
        line_number=ints,
        second=ints,
        customer=ints,
        product=ints,
        quantity=ints,
        price=np.zeros(0, dtype=float),
        country=ints,
    )
