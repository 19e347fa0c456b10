"""What a synthetic shop is asked to be (:class:`ShopSpec`) and what came out of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class ShopSpec:
    """Size, period and seed of a synthetic shop."""

    customers: int = 5000
    products: int = 1000
    days: int = 365
    start: dt.date = dt.date(2025, 1, 1)
    seed: int = 42
    profile: str = "wholesale"  # see shopflow.generator.profiles
    # a change of regime from this date on (None: none): demand jumps and tastes shift (see
    # shopflow.generator.demand.apply_regime_change); models trained before it go stale
    regime_change: dt.date | None = None
    # with regime_change: customers also change habits at it, their habitual products
    # (favourites) drawn anew (see shopflow.generator.customers.change_habits); what each of
    # them bought before is no guide to what they buy after
    regime_new_habits: bool = False

    def __post_init__(self) -> None:
        from shopflow.generator.profiles import profile_of

        profile_of(self.profile)  # refuses an unknown profile at once
        if self.regime_new_habits and self.regime_change is None:
            raise ValueError("ShopSpec.regime_new_habits needs a regime_change date")
        for name in ("customers", "products", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"ShopSpec.{name} must be at least 1, got {getattr(self, name)}")

    @property
    def end(self) -> dt.date:
        """Last business date (inclusive)."""
        return self.start + dt.timedelta(days=self.days - 1)


@dataclass(frozen=True)
class Promotion:
    """A price cut on one category for a few days.

    ``pull`` multiplies how strongly the category draws exploring shoppers and guests (see
    PROMOTION_PULL); the realised lift in units sold is about 2x.
    """

    category: str
    first_day: dt.date
    last_day: dt.date
    discount: float
    pull: float


@dataclass(frozen=True)
class GeneratedShop:
    """What :func:`generate_shop` wrote.

    ``order_lines`` and ``orders`` count everything in the landing files, returns included
    (``return_lines`` of them, in ``return_orders`` orders ``R...``).
    """

    spec: ShopSpec
    order_lines: int
    orders: int
    customers: int
    products: int
    first_date: dt.date
    last_date: dt.date
    partitions_written: int
    return_lines: int = 0
    return_orders: int = 0
    promotions: tuple[Promotion, ...] = ()
