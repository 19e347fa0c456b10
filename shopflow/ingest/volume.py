"""What a day's order-line volume is usually like: the yardstick of the volume rules.

A shop's days are not alike: Mondays differ from Sundays, and a wholesaler's week before
Christmas is a tenth of its November. A day is compared with the same weekday of the weeks
before it (VOLUME_WEEKDAY_WEEKS), or with every day of the trailing VOLUME_WINDOW_DAYS when
too few same weekdays were loaded, and that level is scaled by the shop's own seasonality
when a year of history holds the same weeks a year earlier: how those weeks compared with
the 28 days before them then. Days without a partition (closures) are not counted.
"""

from __future__ import annotations

import datetime as dt

VOLUME_WINDOW_DAYS = 28
VOLUME_MIN_HISTORY = 7  # partitions in the window; fewer and volume is not checked
# Below this many rows per partition on average a shop is so small that one large order is a
# "10x spike" and a quiet day a "90% drop" (Poisson noise): volume is not checked.
VOLUME_MIN_AVERAGE_ROWS = 20
VOLUME_WEEKDAY_WEEKS = 8
VOLUME_MIN_SAME_WEEKDAYS = 3
# The seasonal factor is the mean of the days within this many days of the same weekday a
# year (52 weeks) earlier, over the mean of the 28 days before them.
SEASON_HALF_WIDTH_DAYS = 3
SEASON_FACTOR_BOUNDS = (0.05, 5.0)


def _mean(values: list[int]) -> float:
    return sum(values) / len(values)


def _rows_between(history: dict[dt.date, int], start: dt.date, end: dt.date) -> list[int]:
    """Rows of the partitions dated in [start, end)."""
    return [rows for day, rows in history.items() if start <= day < end]


def seasonal_factor(history: dict[dt.date, int], day: dt.date) -> float:
    """How the weeks around ``day`` a year earlier compared with the 28 days before them;
    1.0 without that much history."""
    last_year = day - dt.timedelta(weeks=52)
    half = dt.timedelta(days=SEASON_HALF_WIDTH_DAYS)
    around = _rows_between(history, last_year - half, last_year + half + dt.timedelta(days=1))
    before = _rows_between(
        history, last_year - half - dt.timedelta(days=VOLUME_WINDOW_DAYS), last_year - half
    )
    if len(around) < 2 or len(before) < VOLUME_MIN_HISTORY or not sum(before):
        return 1.0
    low, high = SEASON_FACTOR_BOUNDS
    return min(high, max(low, _mean(around) / _mean(before)))


def usual_volume(history: dict[dt.date, int], day: dt.date) -> tuple[float | None, int]:
    """The rows ``day``'s partition usually holds, and how many partitions of the trailing
    28 days there were; None with fewer than VOLUME_MIN_HISTORY of them (a new shop's first
    week) or a mean under VOLUME_MIN_AVERAGE_ROWS (a very small shop)."""
    window = _rows_between(history, day - dt.timedelta(days=VOLUME_WINDOW_DAYS), day)
    if len(window) < VOLUME_MIN_HISTORY or sum(window) < VOLUME_MIN_AVERAGE_ROWS * len(window):
        return None, len(window)
    same_weekday = [
        rows
        for other, rows in history.items()
        if day - dt.timedelta(weeks=VOLUME_WEEKDAY_WEEKS) <= other < day
        and other.weekday() == day.weekday()
    ]
    level = _mean(same_weekday) if len(same_weekday) >= VOLUME_MIN_SAME_WEEKDAYS else _mean(window)
    return level * seasonal_factor(history, day), len(window)
