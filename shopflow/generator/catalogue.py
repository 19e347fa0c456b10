"""The catalogue: categories, and the products with their names, prices, launch days and
popularity (Zipf within each category)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from shopflow.generator.common import normalised, running_ids
from shopflow.generator.spec import ShopSpec

ZIPF_EXPONENT = 1.1
PRICE_SIGMA = 0.55


@dataclass(frozen=True)
class Category:
    """A product category: its demand, prices, season and the words of its names."""

    name: str
    weight: float  # share of demand
    median_price: float
    season_amplitude: float
    season_peak_doy: int
    materials: tuple[str, ...]
    nouns: tuple[str, ...]
    variants: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "kitchen", 1.2, 18.0, 0.10, 345,
        ("Ceramic", "Stoneware", "Steel", "Bamboo", "Glass", "Enamel", "Cast Iron", "Copper"),
        ("Mug", "Bowl", "Teapot", "Skillet", "Cutting Board", "Colander", "Jar", "Plate",
         "Whisk", "Kettle"),
        ("Blue", "White", "Sage", "Charcoal", "Terracotta", "Cream", "Red", "Black"),
    ),
    Category(
        "home", 1.0, 25.0, 0.20, 330,
        ("Linen", "Velvet", "Woven", "Ceramic", "Glass", "Brass", "Oak", "Marble"),
        ("Cushion", "Vase", "Throw", "Candle Holder", "Picture Frame", "Mirror", "Rug",
         "Lamp Shade", "Wall Clock", "Basket"),
        ("Ivory", "Mustard", "Teal", "Blush", "Slate", "Natural", "Emerald", "Rust"),
    ),
    Category(
        "garden", 0.8, 22.0, 0.50, 135,
        ("Galvanised", "Wooden", "Terracotta", "Rattan", "Steel", "Recycled", "Weatherproof",
         "Copper"),
        ("Planter", "Watering Can", "Trowel", "Hose Reel", "Bird Feeder", "Pruner", "Seed Tray",
         "Lantern", "Bench Cushion", "Rake"),
        ("Small", "Medium", "Large", "Green", "Grey", "Natural", "Olive", "Sand"),
    ),
    Category(
        "toys", 0.9, 20.0, 0.45, 350,
        ("Wooden", "Plush", "Magnetic", "Musical", "Classic", "Mini", "Deluxe", "Glow"),
        ("Train Set", "Teddy Bear", "Puzzle", "Building Blocks", "Doll House", "Kite",
         "Race Car", "Stacking Rings", "Marble Run", "Puppet"),
        ("Red", "Rainbow", "Blue", "Pastel", "Yellow", "Forest", "Ocean", "Safari"),
    ),
    Category(
        "electronics", 0.8, 45.0, 0.30, 335,
        ("Wireless", "Portable", "Smart", "Compact", "Rechargeable", "Noise-Cancelling",
         "USB-C", "Bluetooth"),
        ("Speaker", "Headphones", "Charger", "Power Bank", "Desk Lamp", "Keyboard", "Mouse",
         "Webcam", "Cable", "Smart Plug"),
        ("Black", "White", "Graphite", "Silver", "Midnight", "Mini", "Plus", "Pro"),
    ),
    Category(
        "bath", 0.7, 15.0, 0.05, 20,
        ("Cotton", "Waffle", "Bamboo", "Organic", "Turkish", "Quick-Dry", "Terry", "Marble"),
        ("Towel", "Bath Mat", "Robe", "Soap Dish", "Toothbrush Holder", "Shower Curtain",
         "Wash Bag", "Soap Dispenser", "Bath Sheet", "Vanity Tray"),
        ("White", "Stone", "Navy", "Mint", "Sand", "Graphite", "Coral", "Oat"),
    ),
    Category(
        "stationery", 0.6, 8.0, 0.35, 245,
        ("Recycled", "Leather", "Kraft", "Dotted", "Lined", "Spiral", "Pocket", "Hardcover"),
        ("Notebook", "Pen Set", "Planner", "Sticky Notes", "Desk Organiser", "Sketchbook",
         "Pencil Case", "Envelope Pack", "Washi Tape", "Binder"),
        ("A4", "A5", "A6", "Black", "Kraft", "Pastel", "Navy", "Forest"),
    ),
    Category(
        "beauty", 1.0, 12.0, 0.15, 345,
        ("Natural", "Vegan", "Hydrating", "Gentle", "Citrus", "Lavender", "Rose", "Charcoal"),
        ("Face Cream", "Lip Balm", "Shampoo Bar", "Body Lotion", "Hand Soap", "Face Mask",
         "Serum", "Bath Salts", "Hair Oil", "Body Scrub"),
        ("50ml", "100ml", "200ml", "Travel Size", "Refill", "Duo", "Gift Set", "Mini"),
    ),
    Category(
        "sports", 0.7, 24.0, 0.25, 160,
        ("Lightweight", "Pro", "Foldable", "Grip", "Reflective", "Insulated", "Adjustable",
         "Breathable"),
        ("Yoga Mat", "Water Bottle", "Resistance Band", "Dumbbell", "Jump Rope", "Gym Bag",
         "Running Belt", "Foam Roller", "Cycling Gloves", "Headband"),
        ("Black", "Lime", "Coral", "Navy", "Grey", "Orange", "Small", "Large"),
    ),
    Category(
        "pets", 0.8, 16.0, 0.05, 300,
        ("Cosy", "Durable", "Chew-Proof", "Orthopedic", "Reflective", "Organic", "Squeaky",
         "Washable"),
        ("Dog Bed", "Cat Toy", "Leash", "Food Bowl", "Scratching Post", "Collar", "Treat Jar",
         "Pet Blanket", "Grooming Brush", "Carrier"),
        ("Small", "Medium", "Large", "Brown", "Grey", "Red", "Blue", "Tartan"),
    ),
    Category(
        "accessories", 0.7, 28.0, 0.25, 340,
        ("Leather", "Knitted", "Silk", "Canvas", "Wool", "Cashmere", "Suede", "Cotton"),
        ("Scarf", "Beanie", "Wallet", "Tote Bag", "Belt", "Gloves", "Backpack",
         "Glasses Case", "Cap", "Socks"),
        ("Camel", "Black", "Burgundy", "Navy", "Grey", "Mustard", "Olive", "Cream"),
    ),
    Category(
        "pantry", 1.3, 7.0, 0.08, 350,
        ("Organic", "Roasted", "Spiced", "Smoked", "Single-Origin", "Wildflower", "Artisan",
         "Salted"),
        ("Coffee Beans", "Tea Blend", "Honey", "Olive Oil", "Granola", "Chocolate Bar",
         "Hot Sauce", "Pasta", "Jam", "Nut Mix"),
        ("250g", "500g", "1kg", "Dark", "Mild", "Classic", "Gift Box", "Trio"),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Catalog:
    """Every product of the period, as parallel arrays indexed by product."""

    categories: tuple[Category, ...]
    ids: np.ndarray  # object, "P00001" in launch order
    names: np.ndarray  # object
    category: np.ndarray  # int, index into categories
    list_price: np.ndarray  # float, price at launch
    launch_day: np.ndarray  # int, day index of first availability
    popularity: np.ndarray  # float, Zipf weight within the category
    by_category: np.ndarray  # product indices sorted by category
    bounds: np.ndarray  # by_category[bounds[c]:bounds[c + 1]] are category c's products
    anchors: np.ndarray  # per category: its most popular product available from day 0


def build_catalog(spec: ShopSpec, rng: np.random.Generator) -> Catalog:
    """``spec.products`` products over the first ``spec.products`` categories (at most all)."""
    from shopflow.generator.profiles import profile_of

    profile = profile_of(spec.profile)
    n = spec.products
    categories = _seasoned(CATEGORIES[: min(len(CATEGORIES), n)], profile.season_scale)
    n_cat = len(categories)
    weights = normalised([c.weight for c in categories])
    # Every category gets at least one product, the rest follow the demand weights.
    category = np.concatenate(
        [rng.permutation(n_cat), rng.choice(n_cat, size=n - n_cat, p=weights)]
    )
    launch_day = np.where(
        rng.random(n) < profile.initial_product_share,
        0,
        rng.integers(1, max(spec.days, 2), size=n),
    )
    if profile.launch_wave_days:
        # collections: every launch on the first day of its wave
        launch_day = (launch_day // profile.launch_wave_days) * profile.launch_wave_days
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
    popularity = _zipf_within_category(category, bounds, rng, profile.zipf_exponent)
    medians = np.array([c.median_price for c in categories])[category]
    list_price = shelf_price(medians * np.exp(PRICE_SIGMA * rng.standard_normal(n)))
    names = _product_names(category, categories, rng)
    anchors = np.array(
        [
            _most_popular(by_category[bounds[c] : bounds[c + 1]], popularity, launch_day)
            for c in range(n_cat)
        ]
    )
    return Catalog(
        categories=categories,
        ids=running_ids("P", 5, n),
        names=names,
        category=category,
        list_price=list_price,
        launch_day=launch_day,
        popularity=popularity,
        by_category=by_category,
        bounds=bounds,
        anchors=anchors,
    )


def _seasoned(categories: tuple[Category, ...], scale: float) -> tuple[Category, ...]:
    """The categories with their season amplitudes times ``scale`` (at most 0.9)."""
    if scale == 1.0:
        return categories
    return tuple(
        dataclasses.replace(c, season_amplitude=min(0.9, c.season_amplitude * scale))
        for c in categories
    )


def _zipf_within_category(
    category: np.ndarray,
    bounds: np.ndarray,
    rng: np.random.Generator,
    exponent: float = ZIPF_EXPONENT,
) -> np.ndarray:
    """Popularity 1 / rank**s with a random rank order inside each category."""
    n = len(category)
    shuffled = np.lexsort((rng.random(n), category))
    rank = np.empty(n, dtype=np.int64)
    rank[shuffled] = np.arange(n) - bounds[category[shuffled]]
    return 1.0 / (rank + 1.0) ** exponent


def _most_popular(products: np.ndarray, popularity: np.ndarray, launch_day: np.ndarray) -> int:
    """The most popular of ``products`` that is available from day 0."""
    at_start = products[launch_day[products] == 0]
    return int(at_start[np.argmax(popularity[at_start])])


def shelf_price(raw: np.ndarray) -> np.ndarray:
    """Round to shop prices that end in .99 (at least 0.99)."""
    return np.round(np.maximum(np.floor(raw), 0.0) + 0.99, 2)


def _product_names(
    category: np.ndarray, categories: tuple[Category, ...], rng: np.random.Generator
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
