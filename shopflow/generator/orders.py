"""One day of sales: who orders when, how many lines, which products, what quantities."""

from __future__ import annotations

import numpy as np

from shopflow.generator.catalogue import Catalog
from shopflow.generator.common import (
    SECONDS_PER_DAY,
    normalised,
    time_of_day,
)
from shopflow.generator.customers import Customers, preferred_category
from shopflow.generator.demand import DemandCalendar
from shopflow.generator.lines import Lines
from shopflow.generator.profiles import PROFILES, Profile
from shopflow.generator.promotions import PROMO_STOCK_UP_SHARE
from shopflow.generator.sampling import CategorySampler, pick_slot, sample_available

# Who orders, and which products.
GUEST_SHARE = 0.08
FAVOURITE_SKEW = 1.7  # > 1: the first favourites are reordered more often than the last
PREFERENCE_SHARE = 0.8  # exploring lines that stay in the customer's preferred categories

# Order shape.
MAX_LINES = 10
QUANTITY_WEIGHTS = (0.45, 0.25, 0.12, 0.08, 0.05, 0.05)  # quantity 1 .. 6
BULK_SIZES = (12, 18, 24, 36, 48)
BULK_SHARE = 0.015
WHOLESALE_BULK_SHARE = 0.25

WHOLESALE = PROFILES["wholesale"]


def simulate_sales(
    day: int,
    first_order_number: int,
    catalog: Catalog,
    customers: Customers,
    calendar: DemandCalendar,
    sampler: CategorySampler,
    prices: np.ndarray,
    rng: np.random.Generator,
    profile: Profile = WHOLESALE,
    on_sale: np.ndarray | None = None,
) -> Lines:
    """All sales orders of one day, sorted by time and numbered from ``first_order_number``.

    ``on_sale`` (per product, None: every launched one): a favourite no longer on sale is
    replaced by an explored product."""
    order_customer, order_second = _draw_orders(day, customers, calendar, rng, profile)
    wholesale = np.append(customers.wholesale, False)[order_customer]
    n_lines = np.where(
        wholesale,
        rng.integers(3, MAX_LINES + 1, size=len(order_customer)),
        np.minimum(rng.geometric(profile.lines_geometric_p, size=len(order_customer)), MAX_LINES),
    )
    line_order = np.repeat(np.arange(len(order_customer)), n_lines)
    line_customer = order_customer[line_order]
    product = _choose_products(
        day, line_customer, catalog, customers, calendar, sampler, rng, on_sale
    )

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
        len(profile.countries), size=len(order_customer), p=normalised(profile.country_weights)
    )
    order_country = np.where(
        order_customer < customers.guest,
        np.append(customers.country, 0)[order_customer],
        guest_country,
    )
    return Lines(
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
    day: int,
    customers: Customers,
    calendar: DemandCalendar,
    rng: np.random.Generator,
    profile: Profile = WHOLESALE,
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
    if profile.first_order_on_signup:
        # everyone who signs up today orders today; the calendar's orders are the returns
        first, stop = np.searchsorted(customers.created_day, [day, day + 1])
        registered = np.concatenate([np.arange(first, stop), registered])
        n_registered = len(registered)
    order_customer = np.concatenate([registered, np.full(n_guest, customers.guest)])
    second = time_of_day(len(order_customer), rng)

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
    catalog: Catalog,
    customers: Customers,
    calendar: DemandCalendar,
    sampler: CategorySampler,
    rng: np.random.Generator,
    on_sale: np.ndarray | None = None,
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
    if on_sale is not None:
        use_favourite &= on_sale[np.maximum(favourite, 0)]

    demand = calendar.category_demand[day]
    from_preferences = registered & (rng.random(n) < PREFERENCE_SHARE)
    preferred = preferred_category(customers.preferences[customer], demand, rng)
    weights = demand * np.array([c.weight for c in catalog.categories])
    popular = pick_slot(np.broadcast_to(weights, (n, len(weights))), rng)
    category = np.where(from_preferences, preferred, popular)
    explored = sample_available(category, day, sampler, catalog, rng)
    return np.where(use_favourite, favourite, explored)


def _draw_quantity(
    wholesale: np.ndarray, on_promotion: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Units per line: mostly 1-6, sometimes bulk, one more on promotion."""
    n = len(wholesale)
    quantity = rng.choice(len(QUANTITY_WEIGHTS), size=n, p=normalised(QUANTITY_WEIGHTS)) + 1
    bulk = rng.random(n) < np.where(wholesale, WHOLESALE_BULK_SHARE, BULK_SHARE)
    quantity = np.where(bulk, rng.choice(BULK_SIZES, size=n), quantity)
    stock_up = on_promotion & (rng.random(n) < PROMO_STOCK_UP_SHARE)
    return quantity + stock_up
