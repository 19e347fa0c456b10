"""The yardstick of the volume rules: same weekday, the shop's own seasonality."""

from __future__ import annotations

import datetime as dt

from shopflow.ingest.volume import seasonal_factor, usual_volume

MONDAY = dt.date(2025, 3, 3)


def _weeks(start: dt.date, weeks: int, per_weekday: list[int]) -> dict[dt.date, int]:
    return {
        start + dt.timedelta(days=7 * week + day): per_weekday[day]
        for week in range(weeks)
        for day in range(7)
        if per_weekday[day]
    }


def test_a_day_is_compared_with_the_same_weekday():
    # busy Mondays, quiet Saturdays, closed on Sundays
    history = _weeks(MONDAY, 6, [500, 100, 100, 100, 100, 20, 0])

    monday, _ = usual_volume(history, MONDAY + dt.timedelta(weeks=6))
    saturday, _ = usual_volume(history, MONDAY + dt.timedelta(weeks=6, days=5))

    assert monday == 500
    assert saturday == 20  # 20 rows on a Saturday is its usual volume, not a 90 % drop


def test_too_little_history_is_not_checked_and_few_same_weekdays_use_every_day():
    history = _weeks(MONDAY, 1, [100] * 7)

    assert usual_volume(history, MONDAY + dt.timedelta(days=5)) == (None, 5)
    assert usual_volume(history, MONDAY + dt.timedelta(days=7)) == (100, 7)


def test_the_same_weeks_a_year_earlier_scale_the_usual_volume():
    # a shop that drops to a tenth in the week before Christmas, every year
    history = _weeks(dt.date(2024, 1, 1), 104, [100] * 7)
    last_christmas = dt.date(2024, 12, 22)
    for offset in range(-3, 4):
        history[last_christmas + dt.timedelta(days=offset)] = 10
    day = last_christmas + dt.timedelta(weeks=52)
    history = {d: r for d, r in history.items() if d < day}

    usual, _ = usual_volume(history, day)

    assert seasonal_factor(history, day) == 0.1
    assert usual == 10.0
    assert seasonal_factor(history, day + dt.timedelta(weeks=8)) == 1.0
