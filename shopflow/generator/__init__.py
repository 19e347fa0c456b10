"""Deterministic synthetic online shop, written as landing partitions (see docs/design.md,
"Landing contract").

The demo and the benchmarks need data with real signal: the forecaster must find weekly and
yearly seasonality, a growth trend and promotion effects; the recommender must find stable
category preferences, habitual repurchases and skewed popularity. Everything is drawn from one
``np.random.default_rng(seed)`` in a fixed order, so the same :class:`ShopSpec` always yields
byte-identical Parquet files.

The simulation runs day by day and is vectorised over the orders and lines of a day, so memory
stays bounded by one day of lines plus the returns still pending (at most 14 days ahead).

One module per part of the shop, in the order :func:`generate_shop` draws them:
``catalogue`` (categories and products), ``customers``, ``promotions``, ``demand`` (the
calendar of expected orders), ``prices`` (shelf price changes), then per day ``orders`` and
``returns`` (``lines`` holds a day's lines, ``sampling`` draws products) and ``writing``
(the landing partitions); ``spec`` holds what is asked for and what came out, ``shop`` the
day loop. Moving a random draw from one place to another changes every file generated.
"""

from shopflow.generator.catalogue import CATEGORIES
from shopflow.generator.common import COUNTRIES
from shopflow.generator.shop import generate_shop
from shopflow.generator.spec import GeneratedShop, Promotion, ShopSpec
from shopflow.generator.writing import CURRENCY

__all__ = [
    "CATEGORIES",
    "COUNTRIES",
    "CURRENCY",
    "GeneratedShop",
    "Promotion",
    "ShopSpec",
    "generate_shop",
]
