"""What several parts of the simulation share: ids, weights, countries and the time of day."""

from __future__ import annotations

import numpy as np

# UTC hour of day weights: a lunch bump and an evening peak (shop customers are in Europe).
HOUR_WEIGHTS = (
    0.4, 0.25, 0.15, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 2.0, 2.2, 2.4,
    2.6, 2.4, 2.2, 2.2, 2.3, 2.6, 3.0, 3.4, 3.5, 3.0, 2.0, 1.0,
)  # fmt: skip

SECONDS_PER_DAY = 86_400

COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "BE", "AT", "PL")
COUNTRY_WEIGHTS = (0.30, 0.17, 0.12, 0.10, 0.10, 0.08, 0.07, 0.06)


def time_of_day(n: int, rng: np.random.Generator) -> np.ndarray:
    """Seconds after midnight (UTC), following the shop's hourly traffic."""
    hour = rng.choice(24, size=n, p=normalised(HOUR_WEIGHTS))
    return hour * 3600 + rng.integers(0, 3600, size=n)


def running_ids(prefix: str, digits: int, n: int) -> np.ndarray:
    """'P00001' style ids, 1-based; wider than ``digits`` only when n needs it."""
    width = max(digits, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def normalised(weights) -> np.ndarray:
    """``weights`` as floats scaled to sum to 1 (probabilities for ``rng.choice``)."""
    array = np.asarray(weights, dtype=float)
    return array / array.sum()
