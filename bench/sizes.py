"""Benchmark sizes: generated shops, deterministic by seed."""

from __future__ import annotations

import datetime as dt

from shopflow.generator import ShopSpec

START = dt.date(2024, 1, 1)

SIZES = {
    # the demo shop (CI runs only this size)
    "S": ShopSpec(customers=5_000, products=1_000, days=365, start=dt.date(2025, 1, 1), seed=42),
    # ~5 million order lines
    "M": ShopSpec(customers=50_000, products=5_000, days=730, start=START, seed=42),
    # 47.8 million order lines: the generator orders at the same rate per customer as at M,
    # so 500,000 customers give more lines than the ~30 million a shop of this size may have
    "L": ShopSpec(customers=500_000, products=20_000, days=730, start=START, seed=42),
}
