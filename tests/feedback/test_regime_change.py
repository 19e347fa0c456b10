"""The generator's change of regime: the same shop up to the date, then more orders and the
categories' pulls reversed, and with regime_new_habits the customers' tastes drawn anew."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopflow.generator import ShopSpec, generate_shop
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


def _order_lines(landing: Path) -> pd.DataFrame:
    files = sorted((landing / "order_lines").rglob("*.parquet"))
    lines = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    lines = lines[(lines["quantity"] > 0) & lines["customer_id"].notna()]
    return lines.assign(day=pd.to_datetime(lines["ordered_at"]).dt.date)


def _habit_share(lines: pd.DataFrame, change: dt.date) -> float:
    """Share of the lines after ``change`` whose product their customer bought before it."""
    pairs = lines["customer_id"] + "/" + lines["product_id"]
    before = set(pairs[lines["day"] < change])
    return float(pairs[lines["day"] >= change].isin(before).mean())


def test_new_habits_change_what_customers_buy_from_the_change_on_only(tmp_path):
    change = SPEC.start + dt.timedelta(days=CHANGE_DAY)
    spec = dataclasses.replace(SPEC, regime_change=change)
    generate_shop(spec, tmp_path / "change")
    generate_shop(dataclasses.replace(spec, regime_new_habits=True), tmp_path / "habits")
    # the same files up to the change: customers and products, and every day before it
    for path in sorted((tmp_path / "change").rglob("*.parquet")):
        partition = dt.date.fromisoformat(path.parent.name)
        twin = tmp_path / "habits" / path.relative_to(tmp_path / "change")
        if partition < change or path.parts[-3] != "order_lines":
            assert twin.read_bytes() == path.read_bytes(), path
    # after it, customers buy much less of what they bought before
    with_habits = _habit_share(_order_lines(tmp_path / "habits"), change)
    without = _habit_share(_order_lines(tmp_path / "change"), change)
    print(f"lines after the change of products bought before: {without:.3f} -> {with_habits:.3f}")
    assert with_habits < without


def test_new_habits_need_a_change_of_regime():
    with pytest.raises(ValueError, match="regime_new_habits needs a regime_change"):
        ShopSpec(regime_new_habits=True)
