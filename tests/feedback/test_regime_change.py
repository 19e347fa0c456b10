"""The generator's change of regime: the same shop up to the date, then more orders and the
categories' pulls reversed."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from shopflow.generator import ShopSpec
from shopflow.generator.catalogue import build_catalog
from shopflow.generator.demand import REGIME_ORDERS_FACTOR, demand_calendar
from shopflow.generator.promotions import plan_promotions

SPEC = ShopSpec(customers=200, products=40, days=60, start=dt.date(2025, 1, 1), seed=5)
CHANGE_DAY = 40


def calendar(spec):
    rng = np.random.default_rng(spec.seed)
    catalog = build_catalog(spec, rng)
    return demand_calendar(spec, catalog.categories, plan_promotions(spec, catalog.categories, rng))


def test_demand_jumps_and_tastes_reverse_at_the_change_only():
    steady = calendar(SPEC)
    change = SPEC.start + dt.timedelta(days=CHANGE_DAY)
    changed = calendar(dataclasses.replace(SPEC, regime_change=change))
    before, after = slice(0, CHANGE_DAY), slice(CHANGE_DAY, None)
    np.testing.assert_array_equal(changed.orders[before], steady.orders[before])
    np.testing.assert_array_equal(changed.category_demand[before], steady.category_demand[before])
    np.testing.assert_allclose(changed.orders[after], steady.orders[after] * REGIME_ORDERS_FACTOR)
    np.testing.assert_array_equal(
        changed.category_demand[after], steady.category_demand[after][:, ::-1]
    )
    assert not np.array_equal(changed.category_demand[after], steady.category_demand[after])
