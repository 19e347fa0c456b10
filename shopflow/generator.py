"""Deterministic synthetic online shop, written as landing partitions (see DESIGN.md).

The demo and the benchmarks need data with real signal: the forecaster must find weekly and
yearly seasonality, a growth trend and promotion effects; the recommender must find stable
category preferences, habitual repurchases and skewed popularity. Everything is drawn from one
``np.random.default_rng(seed)`` in a fixed order, so the same :class:`ShopSpec` always yields
byte-identical Parquet files.

The simulation runs day by day and is vectorised over the orders and lines of a day, so memory
stays bounded by one day of lines plus the returns still pending (at most 14 days ahead).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shopflow.landing import write_partition

CURRENCY = "EUR"

# Demand level and mix. 0.05 orders per customer and day gives ~250k lines for the demo spec.
ORDERS_PER_CUSTOMER_DAY = 0.05
GUEST_SHARE = 0.08
YEARLY_GROWTH = 0.15
# Monday .. Sunday: Saturday is quiet, Sunday evening and Monday are busy.
WEEKDAY_FACTORS = (1.12, 1.06, 1.02, 0.98, 0.92, 0.78, 1.12)
# UTC hour of day weights: a lunch bump and an evening peak (shop customers are in Europe).
HOUR_WEIGHTS = (
    0.4, 0.25, 0.15, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 2.0, 2.2, 2.4,
    2.6, 2.4, 2.2, 2.2, 2.3, 2.6, 3.0, 3.4, 3.5, 3.0, 2.0, 1.0,
)  # fmt: skip

# Catalogue.
INITIAL_PRODUCT_SHARE = 0.6
ZIPF_EXPONENT = 1.1
PRICE_SIGMA = 0.55
PRICE_CHANGES_PER_PRODUCT_YEAR = 0.6

# Customers.
INITIAL_CUSTOMER_SHARE = 0.35
SIGNUP_GROWTH = 1.0  # sign-ups on the last day are (1 + this) times those on the first
WHOLESALE_SHARE = 0.01
WHOLESALE_ACTIVITY = 5.0
ACTIVITY_SIGMA = 0.8
PREFERENCE_COUNT_WEIGHTS = (0.4, 0.4, 0.2)  # 1, 2 or 3 preferred categories
PREFERENCE_SLOT_WEIGHTS = (0.6, 0.3, 0.1)  # first preference dominates
MAX_FAVOURITES = 15
FAVOURITE_SKEW = 1.7  # > 1: the first favourites are reordered more often than the last
PREFERENCE_SHARE = 0.8  # exploring lines that stay in the customer's preferred categories

# Order shape.
MAX_LINES = 10
LINES_GEOMETRIC_P = 0.45
QUANTITY_WEIGHTS = (0.45, 0.25, 0.12, 0.08, 0.05, 0.05)  # quantity 1 .. 6
BULK_SIZES = (12, 18, 24, 36, 48)
BULK_SHARE = 0.015
WHOLESALE_BULK_SHARE = 0.25

# Returns and promotions.
RETURN_RATE = 0.028
MAX_RETURN_DELAY_DAYS = 14
PARTIAL_RETURN_SHARE = 0.3
# Extra pull of a promoted category on exploring shoppers and guests; favourites do not react,
# so the realised lift in units sold is about 2x.
PROMOTION_PULL = 3.5
PROMO_STOCK_UP_SHARE = 0.25  # promo lines where the customer takes one unit more

SECONDS_PER_DAY = 86_400
ID_DIGITS = 8


@dataclass(frozen=True)
class _Category:
    name: str
    weight: float  # share of demand
    median_price: float
    season_amplitude: float
    season_peak_doy: int
    materials: tuple[str, ...]
    nouns: tuple[str, ...]
    variants: tuple[str, ...]


CATEGORIES: tuple[_Category, ...] = (
    _Category(
        "kitchen", 1.2, 18.0, 0.10, 345,
        ("Ceramic", "Stoneware", "Steel", "Bamboo", "Glass", "Enamel", "Cast Iron", "Copper"),
        ("Mug", "Bowl", "Teapot", "Skillet", "Cutting Board", "Colander", "Jar", "Plate",
         "Whisk", "Kettle"),
        ("Blue", "White", "Sage", "Charcoal", "Terracotta", "Cream", "Red", "Black"),
    ),
    _Category(
        "home", 1.0, 25.0, 0.20, 330,
        ("Linen", "Velvet", "Woven", "Ceramic", "Glass", "Brass", "Oak", "Marble"),
        ("Cushion", "Vase", "Throw", "Candle Holder", "Picture Frame", "Mirror", "Rug",
         "Lamp Shade", "Wall Clock", "Basket"),
        ("Ivory", "Mustard", "Teal", "Blush", "Slate", "Natural", "Emerald", "Rust"),
    ),
    _Category(
        "garden", 0.8, 22.0, 0.50, 135,
        ("Galvanised", "Wooden", "Terracotta", "Rattan", "Steel", "Recycled", "Weatherproof",
         "Copper"),
        ("Planter", "Watering Can", "Trowel", "Hose Reel", "Bird Feeder", "Pruner", "Seed Tray",
         "Lantern", "Bench Cushion", "Rake"),
        ("Small", "Medium", "Large", "Green", "Grey", "Natural", "Olive", "Sand"),
    ),
    _Category(
        "toys", 0.9, 20.0, 0.45, 350,
        ("Wooden", "Plush", "Magnetic", "Musical", "Classic", "Mini", "Deluxe", "Glow"),
        ("Train Set", "Teddy Bear", "Puzzle", "Building Blocks", "Doll House", "Kite",
         "Race Car", "Stacking Rings", "Marble Run", "Puppet"),
        ("Red", "Rainbow", "Blue", "Pastel", "Yellow", "Forest", "Ocean", "Safari"),
    ),
    _Category(
        "electronics", 0.8, 45.0, 0.30, 335,
        ("Wireless", "Portable", "Smart", "Compact", "Rechargeable", "Noise-Cancelling",
         "USB-C", "Bluetooth"),
        ("Speaker", "Headphones", "Charger", "Power Bank", "Desk Lamp", "Keyboard", "Mouse",
         "Webcam", "Cable", "Smart Plug"),
        ("Black", "White", "Graphite", "Silver", "Midnight", "Mini", "Plus", "Pro"),
    ),
    _Category(
        "bath", 0.7, 15.0, 0.05, 20,
        ("Cotton", "Waffle", "Bamboo", "Organic", "Turkish", "Quick-Dry", "Terry", "Marble"),
        ("Towel", "Bath Mat", "Robe", "Soap Dish", "Toothbrush Holder", "Shower Curtain",
         "Wash Bag", "Soap Dispenser", "Bath Sheet", "Vanity Tray"),
        ("White", "Stone", "Navy", "Mint", "Sand", "Graphite", "Coral", "Oat"),
    ),
    _Category(
        "stationery", 0.6, 8.0, 0.35, 245,
        ("Recycled", "Leather", "Kraft", "Dotted", "Lined", "Spiral", "Pocket", "Hardcover"),
        ("Notebook", "Pen Set", "Planner", "Sticky Notes", "Desk Organiser", "Sketchbook",
         "Pencil Case", "Envelope Pack", "Washi Tape", "Binder"),
        ("A4", "A5", "A6", "Black", "Kraft", "Pastel", "Navy", "Forest"),
    ),
    _Category(
        "beauty", 1.0, 12.0, 0.15, 345,
        ("Natural", "Vegan", "Hydrating", "Gentle", "Citrus", "Lavender", "Rose", "Charcoal"),
        ("Face Cream", "Lip Balm", "Shampoo Bar", "Body Lotion", "Hand Soap", "Face Mask",
         "Serum", "Bath Salts", "Hair Oil", "Body Scrub"),
        ("50ml", "100ml", "200ml", "Travel Size", "Refill", "Duo", "Gift Set", "Mini"),
    ),
    _Category(
        "sports", 0.7, 24.0, 0.25, 160,
        ("Lightweight", "Pro", "Foldable", "Grip", "Reflective", "Insulated", "Adjustable",
         "Breathable"),
        ("Yoga Mat", "Water Bottle", "Resistance Band", "Dumbbell", "Jump Rope", "Gym Bag",
         "Running Belt", "Foam Roller", "Cycling Gloves", "Headband"),
        ("Black", "Lime", "Coral", "Navy", "Grey", "Orange", "Small", "Large"),
    ),
    _Category(
        "pets", 0.8, 16.0, 0.05, 300,
        ("Cosy", "Durable", "Chew-Proof", "Orthopedic", "Reflective", "Organic", "Squeaky",
         "Washable"),
        ("Dog Bed", "Cat Toy", "Leash", "Food Bowl", "Scratching Post", "Collar", "Treat Jar",
         "Pet Blanket", "Grooming Brush", "Carrier"),
        ("Small", "Medium", "Large", "Brown", "Grey", "Red", "Blue", "Tartan"),
    ),
    _Category(
        "accessories", 0.7, 28.0, 0.25, 340,
        ("Leather", "Knitted", "Silk", "Canvas", "Wool", "Cashmere", "Suede", "Cotton"),
        ("Scarf", "Beanie", "Wallet", "Tote Bag", "Belt", "Gloves", "Backpack",
         "Glasses Case", "Cap", "Socks"),
        ("Camel", "Black", "Burgundy", "Navy", "Grey", "Mustard", "Olive", "Cream"),
    ),
    _Category(
        "pantry", 1.3, 7.0, 0.08, 350,
        ("Organic", "Roasted", "Spiced", "Smoked", "Single-Origin", "Wildflower", "Artisan",
         "Salted"),
        ("Coffee Beans", "Tea Blend", "Honey", "Olive Oil", "Granola", "Chocolate Bar",
         "Hot Sauce", "Pasta", "Jam", "Nut Mix"),
        ("250g", "500g", "1kg", "Dark", "Mild", "Classic", "Gift Box", "Trio"),
    ),
)  # fmt: skip

COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "BE", "AT", "PL")
COUNTRY_WEIGHTS = (0.30, 0.17, 0.12, 0.10, 0.10, 0.08, 0.07, 0.06)


# -- public API --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopSpec:
    """Size, period and seed of a synthetic shop."""

    customers: int = 5000
    products: int = 1000
    days: int = 365
    start: dt.date = dt.date(2025, 1, 1)
    seed: int = 42

    def __post_init__(self) -> None:
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


def generate_shop(spec: ShopSpec, landing_dir: Path) -> GeneratedShop:
    """Simulate the shop described by ``spec`` and write its landing partitions.

    Writes ``order_lines/<date>/part-0.parquet`` for every day of the period (possibly empty),
    ``products/<date>/part-0.parquet`` on every launch date and
    ``customers/<date>/part-0.parquet`` on every sign-up date. Files of the same names are
    replaced, others are left alone (use an empty folder). The same spec gives byte-identical
    files.
    """
    landing_dir = Path(landing_dir)
    rng = np.random.default_rng(spec.seed)
    catalog = _build_catalog(spec, rng)
    customers = _build_customers(spec, len(catalog.categories), rng)
    promotions = _plan_promotions(spec, catalog.categories, rng)
    calendar = _demand_calendar(spec, catalog.categories, promotions)
    price_book = _PriceBook.plan(spec, catalog, rng)

    partitions = _write_products(spec, catalog, landing_dir)
    partitions += _write_customers(spec, customers, landing_dir)

    counters = _Counters()
    pending_returns: dict[int, list[_Lines]] = {}
    for day in range(spec.days):
        date = spec.start + dt.timedelta(days=day)
        # Only launched products can be drawn today.
        sampler = _CategorySampler.build(
            catalog.popularity * (catalog.launch_day <= day), catalog.by_category, catalog.bounds
        )
        _assign_favourites(customers, day, sampler, catalog, rng)
        prices = price_book.advance_to(day)
        sales = _simulate_sales(
            day, counters.orders + 1, catalog, customers, calendar, sampler, prices, rng
        )
        counters.orders += _count_orders(sales)
        returns = _materialise_returns(pending_returns.pop(day, []), counters.returns + 1, rng)
        counters.returns += _count_orders(returns)
        counters.return_lines += len(returns.product)
        _schedule_returns(sales, day, spec.days, pending_returns, rng)
        lines = _concat_lines([sales, returns])
        counters.lines += len(lines.product)
        frame = _order_lines_frame(date, lines, catalog, customers)
        write_partition(frame, landing_dir, "order_lines", date)
        partitions += 1

    return GeneratedShop(
        spec=spec,
        order_lines=counters.lines,
        orders=counters.orders + counters.returns,
        customers=spec.customers,
        products=spec.products,
        first_date=spec.start,
        last_date=spec.end,
        partitions_written=partitions,
        return_lines=counters.return_lines,
        return_orders=counters.returns,
        promotions=promotions,
    )


# -- static world: catalogue, customers, promotions, calendar ------------------------------------


@dataclass
class _Counters:
    orders: int = 0
    returns: int = 0
    lines: int = 0
    return_lines: int = 0


@dataclass(frozen=True)
class _Catalog:
    categories: tuple[_Category, ...]
    ids: np.ndarray  # object, "P00001" in launch order
    names: np.ndarray  # object
    category: np.ndarray  # int, index into categories
    list_price: np.ndarray  # float, price at launch
    launch_day: np.ndarray  # int, day index of first availability
    popularity: np.ndarray  # float, Zipf weight within the category
    by_category: np.ndarray  # product indices sorted by category
    bounds: np.ndarray  # by_category[bounds[c]:bounds[c + 1]] are category c's products
    anchors: np.ndarray  # per category: its most popular product available from day 0


def _build_catalog(spec: ShopSpec, rng: np.random.Generator) -> _Catalog:
    n = spec.products
    categories = CATEGORIES[: min(len(CATEGORIES), n)]
    n_cat = len(categories)
    weights = _normalised([c.weight for c in categories])
    # Every category gets at least one product, the rest follow the demand weights.
    category = np.concatenate(
        [rng.permutation(n_cat), rng.choice(n_cat, size=n - n_cat, p=weights)]
    )
    launch_day = np.where(
        rng.random(n) < INITIAL_PRODUCT_SHARE, 0, rng.integers(1, max(spec.days, 2), size=n)
    )
    launch_day = np.minimum(launch_day, spec.days - 1)
    # Sampling falls back to a category's day-0 product, so each category needs one.
    first_in_category = np.unique(category, return_index=True)[1]
    without_start = np.bincount(category, weights=launch_day == 0, minlength=n_cat) == 0
    launch_day[first_in_category[without_start]] = 0

    # Product ids follow launch order, like a shop's running article numbers.
    order = np.argsort(launch_day, kind="stable")
    category, launch_day = category[order], launch_day[order]

    by_category = np.lexsort((np.arange(n), category))
    bounds = np.searchsorted(category[by_category], np.arange(n_cat + 1))
    popularity = _zipf_within_category(category, bounds, rng)
    medians = np.array([c.median_price for c in categories])[category]
    list_price = _shelf_price(medians * np.exp(PRICE_SIGMA * rng.standard_normal(n)))
    names = _product_names(category, categories, rng)
    anchors = np.array(
        [
            _most_popular(by_category[bounds[c] : bounds[c + 1]], popularity, launch_day)
            for c in range(n_cat)
        ]
    )
    return _Catalog(
        categories=categories,
        ids=_ids("P", 5, n),
        names=names,
        category=category,
        list_price=list_price,
        launch_day=launch_day,
        popularity=popularity,
        by_category=by_category,
        bounds=bounds,
        anchors=anchors,
    )


def _zipf_within_category(
    category: np.ndarray, bounds: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Popularity 1 / rank**s with a random rank order inside each category."""
    n = len(category)
    shuffled = np.lexsort((rng.random(n), category))
    rank = np.empty(n, dtype=np.int64)
    rank[shuffled] = np.arange(n) - bounds[category[shuffled]]
    return 1.0 / (rank + 1.0) ** ZIPF_EXPONENT


def _most_popular(products: np.ndarray, popularity: np.ndarray, launch_day: np.ndarray) -> int:
    at_start = products[launch_day[products] == 0]
    return int(at_start[np.argmax(popularity[at_start])])


def _shelf_price(raw: np.ndarray) -> np.ndarray:
    """Round to shop prices that end in .99 (at least 0.99)."""
    return np.round(np.maximum(np.floor(raw), 0.0) + 0.99, 2)


def _product_names(
    category: np.ndarray, categories: tuple[_Category, ...], rng: np.random.Generator
) -> np.ndarray:
    """'Material Noun Variant' names, unique: combinations are drawn without replacement."""
    names = np.empty(len(category), dtype=object)
    for c, kind in enumerate(categories):
        members = np.flatnonzero(category == c)
        sizes = (len(kind.materials), len(kind.nouns), len(kind.variants))
        combos = math.prod(sizes)
        picks = rng.permutation(max(combos, len(members)))[: len(members)]
        for product, pick in zip(members, picks, strict=True):
            material, rest = divmod(int(pick) % combos, sizes[1] * sizes[2])
            noun, variant = divmod(rest, sizes[2])
            name = f"{kind.materials[material]} {kind.nouns[noun]} {kind.variants[variant]}"
            edition = int(pick) // combos
            names[product] = name if edition == 0 else f"{name} No. {edition + 1}"
    return names


@dataclass(frozen=True)
class _Customers:
    ids: np.ndarray  # object, "C000001" in sign-up order, plus None at index n for guests
    created_day: np.ndarray  # int, sorted ascending
    created_second: np.ndarray  # int, second of the sign-up day
    country: np.ndarray  # int, index into COUNTRIES
    wholesale: np.ndarray  # bool
    cum_activity: np.ndarray  # cumulative order rates, prefix sums in id order
    preferences: np.ndarray  # (n, 3) category indices, -1 = none
    favourites: np.ndarray  # (n, MAX_FAVOURITES) product indices, filled on the sign-up day
    favourite_count: np.ndarray  # int
    favourite_share: np.ndarray  # float, probability that a line is a favourite

    @property
    def guest(self) -> int:
        """Index used for guest orders."""
        return len(self.created_day)


def _build_customers(spec: ShopSpec, n_categories: int, rng: np.random.Generator) -> _Customers:
    n = spec.customers
    growth = 1.0 + SIGNUP_GROWTH * np.arange(spec.days) / spec.days
    signup_day = rng.choice(spec.days, size=n, p=growth / growth.sum())
    created_day = np.where(rng.random(n) < INITIAL_CUSTOMER_SHARE, 0, signup_day)
    created_second = _time_of_day(n, rng)
    # Customer ids follow sign-up order; eligible customers on day d are then an id prefix.
    order = np.lexsort((created_second, created_day))
    created_day, created_second = created_day[order], created_second[order]

    wholesale = rng.random(n) < WHOLESALE_SHARE
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, size=n) * np.where(
        wholesale, WHOLESALE_ACTIVITY, 1.0
    )
    favourite_count = np.where(
        wholesale, rng.integers(6, MAX_FAVOURITES + 1, size=n), rng.integers(2, 9, size=n)
    )
    favourite_share = np.where(wholesale, rng.beta(8, 2, size=n), rng.beta(5, 5, size=n))
    ids = np.append(_ids("C", 6, n), None)
    return _Customers(
        ids=ids,
        created_day=created_day,
        created_second=created_second,
        country=rng.choice(len(COUNTRIES), size=n, p=_normalised(COUNTRY_WEIGHTS)),
        wholesale=wholesale,
        cum_activity=np.cumsum(activity),
        preferences=_category_preferences(n, n_categories, rng),
        favourites=np.full((n, MAX_FAVOURITES), -1, dtype=np.int64),
        favourite_count=favourite_count,
        favourite_share=favourite_share,
    )


def _category_preferences(n: int, n_categories: int, rng: np.random.Generator) -> np.ndarray:
    """1-3 distinct categories per customer, popular categories more likely (Gumbel top-k)."""
    weights = _normalised([c.weight for c in CATEGORIES[:n_categories]])
    keys = np.log(weights) - np.log(-np.log(rng.random((n, n_categories))))
    ranked = np.argsort(-keys, axis=1, kind="stable")[:, :3]
    if ranked.shape[1] < 3:
        ranked = np.pad(ranked, ((0, 0), (0, 3 - ranked.shape[1])), constant_values=-1)
    count = np.minimum(rng.choice(3, size=n, p=PREFERENCE_COUNT_WEIGHTS) + 1, n_categories)
    return np.where(np.arange(3) < count[:, None], ranked, -1)


def _plan_promotions(
    spec: ShopSpec, categories: tuple[_Category, ...], rng: np.random.Generator
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


@dataclass(frozen=True)
class _Calendar:
    orders: np.ndarray  # (days,) expected orders, guests included
    category_demand: np.ndarray  # (days, n_cat) relative pull of each category
    discount: np.ndarray  # (days, n_cat) price cut in force


def _demand_calendar(
    spec: ShopSpec, categories: tuple[_Category, ...], promotions: tuple[Promotion, ...]
) -> _Calendar:
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
    weights = _normalised([c.weight for c in categories])
    promo_boost = (demand @ weights) / (season @ weights)
    base = spec.customers * ORDERS_PER_CUSTOMER_DAY
    orders = base * weekday * _yearly_factor(doy) * trend * promo_boost
    return _Calendar(orders=orders, category_demand=demand, discount=discount)


def _yearly_factor(doy: np.ndarray) -> np.ndarray:
    """Winter high / summer dip, Black Friday, Christmas run-up and the lull after it."""
    factor = 1.0 + 0.12 * np.cos(2 * np.pi * (doy - 15) / 365.25)
    factor += 0.35 * np.exp(-0.5 * ((doy - 332) / 2.5) ** 2)
    factor += 0.45 * np.exp(-0.5 * ((doy - 346) / 9.0) ** 2)
    return np.where(doy >= 359, factor * 0.7, factor)


class _PriceBook:
    """Current shelf prices: occasional small permanent changes after launch."""

    def __init__(
        self, prices: np.ndarray, day: np.ndarray, product: np.ndarray, factor: np.ndarray
    ):
        order = np.lexsort((product, day))
        self._prices = prices.copy()
        self._day, self._product, self._factor = day[order], product[order], factor[order]
        self._next = 0

    @classmethod
    def plan(cls, spec: ShopSpec, catalog: _Catalog, rng: np.random.Generator) -> _PriceBook:
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
            self._prices[p] = _shelf_price(np.array([self._prices[p] * self._factor[i]]))[0]
        self._next = stop
        return self._prices


# -- sampling ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CategorySampler:
    """Draws products within given categories, proportional to per-product weights."""

    by_category: np.ndarray
    bounds: np.ndarray
    cum: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def build(cls, weights: np.ndarray, by_category: np.ndarray, bounds: np.ndarray):
        cum = np.cumsum(weights[by_category])
        padded = np.concatenate([[0.0], cum])
        return cls(by_category, bounds, cum, padded[bounds[:-1]], padded[bounds[1:]])

    def sample(self, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.lo[categories] + rng.random(len(categories)) * (
            self.hi[categories] - self.lo[categories]
        )
        # First position whose running total exceeds the target: zero weights are skipped.
        pos = np.searchsorted(self.cum, target, side="right")
        pos = np.clip(pos, self.bounds[categories], self.bounds[categories + 1] - 1)
        return self.by_category[pos]


def _sample_available(
    categories: np.ndarray,
    day: int,
    sampler: _CategorySampler,
    catalog: _Catalog,
    rng: np.random.Generator,
) -> np.ndarray:
    products = sampler.sample(categories, rng)
    # Float rounding at a category's upper edge can land on a product not yet launched.
    late = catalog.launch_day[products] > day
    return np.where(late, catalog.anchors[categories], products)


def _pick_slot(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise draw of a column index proportional to non-negative ``weights``."""
    cum = np.cumsum(weights, axis=1)
    target = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum <= target[:, None]).sum(axis=1), weights.shape[1] - 1)


def _preferred_category(
    preferences: np.ndarray, demand: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One of each row's preferred categories, weighted by slot and by today's demand."""
    valid = preferences >= 0
    weights = np.asarray(PREFERENCE_SLOT_WEIGHTS) * demand[np.maximum(preferences, 0)] * valid
    slot = _pick_slot(weights, rng)
    return preferences[np.arange(len(preferences)), slot]


def _assign_favourites(
    customers: _Customers,
    day: int,
    sampler: _CategorySampler,
    catalog: _Catalog,
    rng: np.random.Generator,
) -> None:
    """Give the customers who sign up today their habitual products (launched ones only)."""
    first, stop = np.searchsorted(customers.created_day, [day, day + 1])
    if first == stop:
        return
    prefs = np.repeat(customers.preferences[first:stop], MAX_FAVOURITES, axis=0)
    flat_demand = np.ones(len(catalog.categories))
    categories = _preferred_category(prefs, flat_demand, rng)
    products = _sample_available(categories, day, sampler, catalog, rng)
    customers.favourites[first:stop] = products.reshape(stop - first, MAX_FAVOURITES)


def _time_of_day(n: int, rng: np.random.Generator) -> np.ndarray:
    """Seconds after midnight (UTC), following the shop's hourly traffic."""
    hour = rng.choice(24, size=n, p=_normalised(HOUR_WEIGHTS))
    return hour * 3600 + rng.integers(0, 3600, size=n)


# -- one day -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lines:
    """Order lines of one day (or returns pending for a day), as parallel arrays."""

    is_return: np.ndarray  # bool
    order_number: np.ndarray  # int, running number of the O or R series
    line_number: np.ndarray  # int, 1-based within the order
    second: np.ndarray  # int, second of the day
    customer: np.ndarray  # int, customer index or the guest index
    product: np.ndarray  # int
    quantity: np.ndarray  # int, negative for returns
    price: np.ndarray  # float
    country: np.ndarray  # int

    def take(self, index: np.ndarray) -> _Lines:
        return _Lines(**{name: getattr(self, name)[index] for name in _LINE_FIELDS})


_LINE_FIELDS = tuple(_Lines.__dataclass_fields__)


def _concat_lines(parts: list[_Lines]) -> _Lines:
    return _Lines(
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _LINE_FIELDS}
    )


def _count_orders(lines: _Lines) -> int:
    return int(np.count_nonzero(lines.line_number == 1))


def _simulate_sales(
    day: int,
    first_order_number: int,
    catalog: _Catalog,
    customers: _Customers,
    calendar: _Calendar,
    sampler: _CategorySampler,
    prices: np.ndarray,
    rng: np.random.Generator,
) -> _Lines:
    """All sales orders of one day, sorted by time and numbered from ``first_order_number``."""
    order_customer, order_second = _draw_orders(day, customers, calendar, rng)
    wholesale = np.append(customers.wholesale, False)[order_customer]
    n_lines = np.where(
        wholesale,
        rng.integers(3, MAX_LINES + 1, size=len(order_customer)),
        np.minimum(rng.geometric(LINES_GEOMETRIC_P, size=len(order_customer)), MAX_LINES),
    )
    line_order = np.repeat(np.arange(len(order_customer)), n_lines)
    line_customer = order_customer[line_order]
    product = _choose_products(day, line_customer, catalog, customers, calendar, sampler, rng)

    # A shop merges repeated products into one line: keep the first, renumber the rest.
    first = np.unique(line_order * len(catalog.ids) + product, return_index=True)[1]
    keep = np.sort(first)
    line_order, line_customer, product = line_order[keep], line_customer[keep], product[keep]
    starts = np.flatnonzero(np.r_[True, line_order[1:] != line_order[:-1]])
    line_number = np.arange(len(keep)) - np.repeat(starts, np.diff(np.r_[starts, len(keep)])) + 1

    category = catalog.category[product]
    discount = calendar.discount[day, category]
    quantity = _draw_quantity(wholesale[line_order], discount > 0, rng)
    price = np.round(prices[product] * (1.0 - discount), 2)
    guest_country = rng.choice(
        len(COUNTRIES), size=len(order_customer), p=_normalised(COUNTRY_WEIGHTS)
    )
    order_country = np.where(
        order_customer < customers.guest,
        np.append(customers.country, 0)[order_customer],
        guest_country,
    )
    return _Lines(
        is_return=np.zeros(len(keep), dtype=bool),
        order_number=first_order_number + line_order,
        line_number=line_number,
        second=order_second[line_order],
        customer=line_customer,
        product=product,
        quantity=quantity,
        price=price,
        country=order_country[line_order],
    )


def _draw_orders(
    day: int, customers: _Customers, calendar: _Calendar, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Who orders today and when: (customer index or guest, second of day), sorted by time."""
    expected = calendar.orders[day]
    eligible = int(np.searchsorted(customers.created_day, day, side="right"))
    n_registered = int(rng.poisson(expected * (1 - GUEST_SHARE))) if eligible else 0
    n_guest = int(rng.poisson(expected * GUEST_SHARE))
    # Heavy-tailed activity: a customer's chance to place each order is its share of the rates.
    total = customers.cum_activity[eligible - 1] if eligible else 0.0
    registered = np.searchsorted(
        customers.cum_activity[:eligible], rng.random(n_registered) * total, side="right"
    )
    registered = np.minimum(registered, eligible - 1)
    order_customer = np.concatenate([registered, np.full(n_guest, customers.guest)])
    second = _time_of_day(len(order_customer), rng)

    # Someone who signs up today orders only after signing up.
    signed_up_today = np.zeros(len(order_customer), dtype=bool)
    signed_up_today[:n_registered] = customers.created_day[registered] == day
    created = np.zeros(len(order_customer), dtype=np.int64)
    created[:n_registered] = customers.created_second[registered]
    after_signup = created + np.floor(
        rng.random(len(order_customer)) * (SECONDS_PER_DAY - created)
    ).astype(np.int64)
    second = np.where(signed_up_today, after_signup, second)

    order = np.lexsort((order_customer, second))
    return order_customer[order], second[order]


def _choose_products(
    day: int,
    line_customer: np.ndarray,
    catalog: _Catalog,
    customers: _Customers,
    calendar: _Calendar,
    sampler: _CategorySampler,
    rng: np.random.Generator,
) -> np.ndarray:
    """Favourites (habitual reorders) or exploration within preferred or popular categories."""
    n = len(line_customer)
    registered = line_customer < customers.guest
    customer = np.where(registered, line_customer, 0)
    count = np.where(registered, customers.favourite_count[customer], 0)
    use_favourite = registered & (rng.random(n) < customers.favourite_share[customer])
    slot = np.minimum(
        np.floor(count * rng.random(n) ** FAVOURITE_SKEW).astype(np.int64),
        np.maximum(count - 1, 0),
    )
    favourite = customers.favourites[customer, slot]

    demand = calendar.category_demand[day]
    from_preferences = registered & (rng.random(n) < PREFERENCE_SHARE)
    preferred = _preferred_category(customers.preferences[customer], demand, rng)
    weights = demand * np.array([c.weight for c in catalog.categories])
    popular = _pick_slot(np.broadcast_to(weights, (n, len(weights))), rng)
    category = np.where(from_preferences, preferred, popular)
    explored = _sample_available(category, day, sampler, catalog, rng)
    return np.where(use_favourite, favourite, explored)


def _draw_quantity(
    wholesale: np.ndarray, on_promotion: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    n = len(wholesale)
    quantity = rng.choice(len(QUANTITY_WEIGHTS), size=n, p=_normalised(QUANTITY_WEIGHTS)) + 1
    bulk = rng.random(n) < np.where(wholesale, WHOLESALE_BULK_SHARE, BULK_SHARE)
    quantity = np.where(bulk, rng.choice(BULK_SIZES, size=n), quantity)
    stock_up = on_promotion & (rng.random(n) < PROMO_STOCK_UP_SHARE)
    return quantity + stock_up


def _schedule_returns(
    sales: _Lines,
    day: int,
    days: int,
    pending: dict[int, list[_Lines]],
    rng: np.random.Generator,
) -> None:
    """Pick the lines that come back 1-14 days later (never after the period) and queue them."""
    n = len(sales.product)
    returned = rng.random(n) < RETURN_RATE
    return_day = day + rng.integers(1, MAX_RETURN_DELAY_DAYS + 1, size=n)
    partial = (sales.quantity > 1) & (rng.random(n) < PARTIAL_RETURN_SHARE)
    partial_quantity = 1 + np.floor(rng.random(n) * (sales.quantity - 1)).astype(np.int64)
    quantity = np.where(partial, partial_quantity, sales.quantity)
    chosen = np.flatnonzero(returned & (return_day < days))
    queued = _Lines(
        is_return=np.ones(len(chosen), dtype=bool),
        order_number=sales.order_number[chosen],  # the original order, until materialised
        line_number=np.zeros(len(chosen), dtype=np.int64),
        second=np.zeros(len(chosen), dtype=np.int64),
        customer=sales.customer[chosen],
        product=sales.product[chosen],
        quantity=-quantity[chosen],
        price=sales.price[chosen],
        country=sales.country[chosen],
    )
    for target in np.unique(return_day[chosen]):
        pending.setdefault(int(target), []).append(queued.take(return_day[chosen] == target))


def _materialise_returns(
    queued: list[_Lines], first_return_number: int, rng: np.random.Generator
) -> _Lines:
    """Turn the lines coming back today into return orders: one per original order."""
    if not queued:
        return _empty_lines()
    lines = _concat_lines(queued)
    lines = lines.take(np.lexsort((lines.product, lines.order_number)))
    original, group = np.unique(lines.order_number, return_inverse=True)
    second = _time_of_day(len(original), rng)
    rank = np.empty(len(original), dtype=np.int64)
    rank[np.lexsort((original, second))] = np.arange(len(original))
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    line_number = np.arange(len(group)) - starts[group] + 1
    return _Lines(
        is_return=lines.is_return,
        order_number=first_return_number + rank[group],
        line_number=line_number,
        second=second[group],
        customer=lines.customer,
        product=lines.product,
        quantity=lines.quantity,
        price=lines.price,
        country=lines.country,
    )


def _empty_lines() -> _Lines:
    ints = np.zeros(0, dtype=np.int64)
    return _Lines(
        is_return=np.zeros(0, dtype=bool),
        order_number=ints,
        line_number=ints,
        second=ints,
        customer=ints,
        product=ints,
        quantity=ints,
        price=np.zeros(0, dtype=float),
        country=ints,
    )


# -- writing -----------------------------------------------------------------------------------


def _order_lines_frame(
    date: dt.date, lines: _Lines, catalog: _Catalog, customers: _Customers
) -> pd.DataFrame:
    lines = lines.take(
        np.lexsort((lines.line_number, lines.order_number, lines.is_return, lines.second))
    )
    prefix = pd.Series(np.where(lines.is_return, "R", "O"), dtype="str")
    number = pd.Series(lines.order_number, dtype="int64").astype("str").str.zfill(ID_DIGITS)
    return pd.DataFrame(
        {
            "order_id": prefix + number,
            "line_number": lines.line_number.astype(np.int32),
            "ordered_at": _timestamps(date, lines.second),
            "customer_id": pd.Series(customers.ids[lines.customer], dtype="str"),
            "product_id": pd.Series(catalog.ids[lines.product], dtype="str"),
            "quantity": lines.quantity.astype(np.int32),
            "unit_price": lines.price.astype(np.float64),
            "currency": pd.Series([CURRENCY] * len(lines.product), dtype="str"),
            "country": pd.Series(np.asarray(COUNTRIES, dtype=object)[lines.country], dtype="str"),
        }
    )


def _write_products(spec: ShopSpec, catalog: _Catalog, landing_dir: Path) -> int:
    """One partition per launch date; list_price is the launch price."""
    category_names = np.array([c.name for c in catalog.categories], dtype=object)
    written = 0
    for day in np.unique(catalog.launch_day):
        members = np.flatnonzero(catalog.launch_day == day)
        date = spec.start + dt.timedelta(days=int(day))
        frame = pd.DataFrame(
            {
                "product_id": pd.Series(catalog.ids[members], dtype="str"),
                "name": pd.Series(catalog.names[members], dtype="str"),
                "category": pd.Series(category_names[catalog.category[members]], dtype="str"),
                "list_price": catalog.list_price[members].astype(np.float64),
                "first_available_at": _timestamps(date, np.zeros(len(members), dtype=np.int64)),
            }
        )
        write_partition(frame, landing_dir, "products", date)
        written += 1
    return written


def _write_customers(spec: ShopSpec, customers: _Customers, landing_dir: Path) -> int:
    """One partition per sign-up date."""
    countries = np.asarray(COUNTRIES, dtype=object)
    written = 0
    for day in np.unique(customers.created_day):
        members = np.flatnonzero(customers.created_day == day)
        date = spec.start + dt.timedelta(days=int(day))
        frame = pd.DataFrame(
            {
                "customer_id": pd.Series(customers.ids[members], dtype="str"),
                "created_at": _timestamps(date, customers.created_second[members]),
                "country": pd.Series(countries[customers.country[members]], dtype="str"),
            }
        )
        write_partition(frame, landing_dir, "customers", date)
        written += 1
    return written


# -- helpers -----------------------------------------------------------------------------------


def _timestamps(date: dt.date, seconds: np.ndarray) -> np.ndarray:
    """UTC-naive timestamps (microsecond unit) at ``seconds`` after midnight of ``date``."""
    return np.datetime64(date, "us") + seconds.astype("timedelta64[s]")


def _ids(prefix: str, digits: int, n: int) -> np.ndarray:
    """'P00001' style ids, 1-based; wider than ``digits`` only when n needs it."""
    width = max(digits, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _normalised(weights) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()
