"""The demand calendar: expected orders per day and each category's pull and discount.

Weekly and yearly seasonality, a growth trend, per-category seasons and the promotions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from shopflow.generator.catalogue import Category
from shopflow.generator.common import normalised
from shopflow.generator.spec import Promotion, ShopSpec

# Demand level: the profile's orders per customer and day (0.05, ~250k lines for the demo
# spec, in the wholesale profile), shopflow.generator.profiles.
YEARLY_GROWTH = 0.15
# A change of regime (ShopSpec.regime_change): from that day on, orders are this many times
# as many (a marketplace launch), and the categories' pulls are handed round in reverse order
# (the most wanted category becomes the least wanted): what sold before is no guide to what
# sells after. Tree models trained before it do not extrapolate past the demand levels they
# saw, so a forecaster trained before the change goes stale.
REGIME_ORDERS_FACTOR = 5.0
# Monday .. Sunday: Saturday is quiet, Sunday evening and Monday are busy.
WEEKDAY_FACTORS = (1.12, 1.06, 1.02, 0.98, 0.92, 0.78, 1.12)


@dataclass(frozen=True)
class DemandCalendar:
    """Per-day demand of the whole period, known before the first day is simulated."""

    orders: np.ndarray  # (days,) expected orders, guests included
    category_demand: np.ndarray  # (days, n_cat) relative pull of each category
    discount: np.ndarray  # (days, n_cat) price cut in force


def demand_calendar(
    spec: ShopSpec, categories: tuple[Category, ...], promotions: tuple[Promotion, ...]
) -> DemandCalendar:
    """Expected orders per day and category demand, promotions included."""
    dates = [spec.start + dt.timedelta(days=d) for d in range(spec.days)]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    weekday = np.array([WEEKDAY_FACTORS[d.weekday()] for d in dates])
    trend = 1.0 + YEARLY_GROWTH * np.arange(spec.days) / 365.0

    amplitude = np.array([c.season_amplitude for c in categories])
    peak = np.array([c.season_peak_doy for c in categories])
    season = 1.0 + amplitude * np.cos(2 * np.pi * (doy[:, None] - peak) / 365.25)
    lift = np.ones_like(season)
    discount = np.zeros_like(season)
    names = [c.name for c in categories]
    for promo in promotions:
        first = (promo.first_day - spec.start).days
        last = (promo.last_day - spec.start).days
        lift[first : last + 1, names.index(promo.category)] = promo.pull
        discount[first : last + 1, names.index(promo.category)] = promo.discount
    demand = season * lift

    # A promotion adds demand for its category instead of stealing it from the others.
    weights = normalised([c.weight for c in categories])
    promo_boost = (demand @ weights) / (season @ weights)
    from shopflow.generator.profiles import profile_of

    profile = profile_of(spec.profile)
    base = spec.customers * profile.orders_per_customer_day
    yearly = _yearly_factor(doy, profile.yearly_amplitude)
    orders = base * weekday * yearly * trend * promo_boost
    if spec.regime_change is not None:
        orders, demand = apply_regime_change(spec, orders, demand)
    return DemandCalendar(orders=orders, category_demand=demand, discount=discount)


def apply_regime_change(
    spec: ShopSpec, orders: np.ndarray, demand: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Orders and category demand with the change of regime at ``spec.regime_change``."""
    first = max((spec.regime_change - spec.start).days, 0)
    orders = orders.copy()
    demand = demand.copy()
    orders[first:] *= REGIME_ORDERS_FACTOR
    demand[first:] = demand[first:, ::-1]
    return orders, demand


def _yearly_factor(doy: np.ndarray, amplitude: float = 0.12) -> np.ndarray:
    """Winter high / summer dip, Black Friday, Christmas run-up and the lull after it."""
    factor = 1.0 + amplitude * np.cos(2 * np.pi * (doy - 15) / 365.25)
    factor += 0.35 * np.exp(-0.5 * ((doy - 332) / 2.5) ** 2)
    factor += 0.45 * np.exp(-0.5 * ((doy - 346) / 9.0) ** 2)
    return np.where(doy >= 359, factor * 0.7, factor)
