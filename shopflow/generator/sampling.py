"""Drawing products within categories, and weighted row-wise choices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopflow.generator.catalogue import Catalog


@dataclass(frozen=True)
class CategorySampler:
    """Draws products within given categories, proportional to per-product weights."""

    by_category: np.ndarray
    bounds: np.ndarray
    cum: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def build(cls, weights: np.ndarray, by_category: np.ndarray, bounds: np.ndarray):
        """A sampler over products with the given weights (0: never drawn)."""
        cum = np.cumsum(weights[by_category])
        padded = np.concatenate([[0.0], cum])
        return cls(by_category, bounds, cum, padded[bounds[:-1]], padded[bounds[1:]])

    def sample(self, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One product per entry of ``categories``, from that category."""
        target = self.lo[categories] + rng.random(len(categories)) * (
            self.hi[categories] - self.lo[categories]
        )
        # First position whose running total exceeds the target: zero weights are skipped.
        pos = np.searchsorted(self.cum, target, side="right")
        pos = np.clip(pos, self.bounds[categories], self.bounds[categories + 1] - 1)
        return self.by_category[pos]


def sample_available(
    categories: np.ndarray,
    day: int,
    sampler: CategorySampler,
    catalog: Catalog,
    rng: np.random.Generator,
) -> np.ndarray:
    """One product launched by ``day`` per entry of ``categories``."""
    products = sampler.sample(categories, rng)
    # Float rounding at a category's upper edge can land on a product not yet launched.
    late = catalog.launch_day[products] > day
    return np.where(late, catalog.anchors[categories], products)


def pick_slot(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise draw of a column index proportional to non-negative ``weights``."""
    cum = np.cumsum(weights, axis=1)
    target = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum <= target[:, None]).sum(axis=1), weights.shape[1] - 1)
