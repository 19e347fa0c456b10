"""Returns: sold lines that come back 1-14 days later, as return orders ``R...``."""

from __future__ import annotations

import numpy as np

from shopflow.generator.common import time_of_day
from shopflow.generator.lines import Lines, concat_lines, empty_lines

RETURN_RATE = 0.028
MAX_RETURN_DELAY_DAYS = 14
PARTIAL_RETURN_SHARE = 0.3


def schedule_returns(
    sales: Lines,
    day: int,
    days: int,
    pending: dict[int, list[Lines]],
    rng: np.random.Generator,
) -> None:
    """Pick the lines that come back 1-14 days later (never after the period) and queue them."""
    n = len(sales.product)
    returned = rng.random(n) < RETURN_RATE
    return_day = day + rng.integers(1, MAX_RETURN_DELAY_DAYS + 1, size=n)
    partial = (sales.quantity > 1) & (rng.random(n) < PARTIAL_RETURN_SHARE)
    partial_quantity = 1 + np.floor(rng.random(n) * (sales.quantity - 1)).astype(np.int64)
    quantity = np.where(partial, partial_quantity, sales.quantity)
    chosen = np.flatnonzero(returned & (return_day < days))
    queued = Lines(
        is_return=np.ones(len(chosen), dtype=bool),
        order_number=sales.order_number[chosen],  # the original order, until materialised
        line_number=np.zeros(len(chosen), dtype=np.int64),
        second=np.zeros(len(chosen), dtype=np.int64),
        customer=sales.customer[chosen],
        product=sales.product[chosen],
        quantity=-quantity[chosen],
        price=sales.price[chosen],
        country=sales.country[chosen],
    )
    for target in np.unique(return_day[chosen]):
        pending.setdefault(int(target), []).append(queued.take(return_day[chosen] == target))


def materialise_returns(
    queued: list[Lines], first_return_number: int, rng: np.random.Generator
) -> Lines:
    """Turn the lines coming back today into return orders: one per original order."""
    if not queued:
        return empty_lines()
    lines = concat_lines(queued)
    lines = lines.take(np.lexsort((lines.product, lines.order_number)))
    original, group = np.unique(lines.order_number, return_inverse=True)
    second = time_of_day(len(original), rng)
    rank = np.empty(len(original), dtype=np.int64)
    rank[np.lexsort((original, second))] = np.arange(len(original))
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    line_number = np.arange(len(group)) - starts[group] + 1
    return Lines(
        is_return=lines.is_return,
        order_number=first_return_number + rank[group],
        line_number=line_number,
        second=second[group],
        customer=lines.customer,
        product=lines.product,
        quantity=lines.quantity,
        price=lines.price,
        country=lines.country,
    )
