"""Promotions: a few short price cuts on one category at a time."""

from __future__ import annotations

import datetime as dt

import numpy as np

from shopflow.generator.catalogue import Category
from shopflow.generator.spec import Promotion, ShopSpec

# Extra pull of a promoted category on exploring shoppers and guests; favourites do not react,
# so the realised lift in units sold is about 2x.
PROMOTION_PULL = 3.5
PROMO_STOCK_UP_SHARE = 0.25  # promo lines where the customer takes one unit more


def plan_promotions(
    spec: ShopSpec, categories: tuple[Category, ...], rng: np.random.Generator
) -> tuple[Promotion, ...]:
    """4-6 promotions a year, 3-7 days each, one per equal slice of the period (no overlap)."""
    count = round(int(rng.integers(4, 7)) * spec.days / 365)
    count = max(count, 1) if spec.days >= 21 else 0
    promotions = []
    slice_days = spec.days // max(count, 1)
    for i in range(count):
        length = int(min(rng.integers(3, 8), slice_days - 1))
        first = i * slice_days + int(rng.integers(0, slice_days - length + 1))
        promotions.append(
            Promotion(
                category=categories[int(rng.integers(len(categories)))].name,
                first_day=spec.start + dt.timedelta(days=first),
                last_day=spec.start + dt.timedelta(days=first + length - 1),
                discount=round(float(rng.uniform(0.20, 0.30)), 2),
                pull=PROMOTION_PULL,
            )
        )
    return tuple(promotions)
