"""Shelf prices over time: occasional small permanent changes after a product's launch."""

from __future__ import annotations

import numpy as np

from shopflow.generator.catalogue import Catalog, shelf_price
from shopflow.generator.spec import ShopSpec

PRICE_CHANGES_PER_PRODUCT_YEAR = 0.6


class PriceBook:
    """Current shelf prices: occasional small permanent changes after launch."""

    def __init__(
        self, prices: np.ndarray, day: np.ndarray, product: np.ndarray, factor: np.ndarray
    ):
        order = np.lexsort((product, day))
        self._prices = prices.copy()
        self._day, self._product, self._factor = day[order], product[order], factor[order]
        self._next = 0

    @classmethod
    def plan(cls, spec: ShopSpec, catalog: Catalog, rng: np.random.Generator) -> PriceBook:
        """Draw every price change of the period up front (the rng order stays fixed)."""
        n = len(catalog.ids)
        counts = rng.poisson(PRICE_CHANGES_PER_PRODUCT_YEAR * spec.days / 365, size=n)
        product = np.repeat(np.arange(n), counts)
        launch = catalog.launch_day[product]
        day = launch + 1 + np.floor(rng.random(len(product)) * (spec.days - launch)).astype(int)
        factor = rng.uniform(0.92, 1.12, size=len(product))  # drifts up, like real shelf prices
        keep = day < spec.days
        return cls(catalog.list_price, day[keep], product[keep], factor[keep])

    def advance_to(self, day: int) -> np.ndarray:
        """Apply the changes due up to ``day`` and return the prices in force that day."""
        stop = int(np.searchsorted(self._day, day, side="right"))
        for i in range(self._next, stop):  # a handful a day, order matters for repeats
            p = self._product[i]
            self._prices[p] = shelf_price(np.array([self._prices[p] * self._factor[i]]))[0]
        self._next = stop
        return self._prices
