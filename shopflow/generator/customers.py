"""Customers: sign-up day and country, activity, category preferences and favourites."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopflow.generator.catalogue import CATEGORIES, Catalog
from shopflow.generator.common import (
    normalised,
    running_ids,
    time_of_day,
)
from shopflow.generator.sampling import CategorySampler, pick_slot, sample_available
from shopflow.generator.spec import ShopSpec

SIGNUP_GROWTH = 1.0  # sign-ups on the last day are (1 + this) times those on the first
WHOLESALE_ACTIVITY = 5.0
ACTIVITY_SIGMA = 0.8
PREFERENCE_COUNT_WEIGHTS = (0.4, 0.4, 0.2)  # 1, 2 or 3 preferred categories
PREFERENCE_SLOT_WEIGHTS = (0.6, 0.3, 0.1)  # first preference dominates
MAX_FAVOURITES = 15


@dataclass(frozen=True)
class Customers:
    """Every registered customer as parallel arrays in id order; guests share one index."""

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


def build_customers(spec: ShopSpec, n_categories: int, rng: np.random.Generator) -> Customers:
    """``spec.customers`` customers; favourites are given on the sign-up day."""
    from shopflow.generator.profiles import profile_of

    profile = profile_of(spec.profile)
    n = spec.customers
    growth = 1.0 + SIGNUP_GROWTH * np.arange(spec.days) / spec.days
    signup_day = rng.choice(spec.days, size=n, p=growth / growth.sum())
    created_day = np.where(rng.random(n) < profile.initial_customer_share, 0, signup_day)
    created_second = time_of_day(n, rng)
    # Customer ids follow sign-up order; eligible customers on day d are then an id prefix.
    order = np.lexsort((created_second, created_day))
    created_day, created_second = created_day[order], created_second[order]

    wholesale = rng.random(n) < profile.wholesale_share
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, size=n) * np.where(
        wholesale, WHOLESALE_ACTIVITY, 1.0
    )
    favourite_count = np.where(
        wholesale, rng.integers(6, MAX_FAVOURITES + 1, size=n), rng.integers(2, 9, size=n)
    )
    favourite_share = np.where(wholesale, rng.beta(8, 2, size=n), rng.beta(5, 5, size=n))
    if profile.favourite_share_scale != 1.0:
        favourite_share = favourite_share * profile.favourite_share_scale
    ids = np.append(running_ids("C", 6, n), None)
    return Customers(
        ids=ids,
        created_day=created_day,
        created_second=created_second,
        country=rng.choice(len(profile.countries), size=n, p=normalised(profile.country_weights)),
        wholesale=wholesale,
        cum_activity=np.cumsum(activity),
        preferences=_category_preferences(n, n_categories, rng),
        favourites=np.full((n, MAX_FAVOURITES), -1, dtype=np.int64),
        favourite_count=favourite_count,
        favourite_share=favourite_share,
    )


def _category_preferences(
    n: int, n_categories: int, rng: np.random.Generator, pull: np.ndarray | None = None
) -> np.ndarray:
    """1-3 distinct categories per customer, popular categories more likely (Gumbel top-k);
    ``pull`` (per category, None: even) weighs the categories' popularity further."""
    weights = normalised([c.weight for c in CATEGORIES[:n_categories]])
    if pull is not None:
        weights = normalised(weights * pull)
    keys = np.log(weights) - np.log(-np.log(rng.random((n, n_categories))))
    ranked = np.argsort(-keys, axis=1, kind="stable")[:, :3]
    if ranked.shape[1] < 3:
        ranked = np.pad(ranked, ((0, 0), (0, 3 - ranked.shape[1])), constant_values=-1)
    count = np.minimum(rng.choice(3, size=n, p=PREFERENCE_COUNT_WEIGHTS) + 1, n_categories)
    return np.where(np.arange(3) < count[:, None], ranked, -1)


def preferred_category(
    preferences: np.ndarray, demand: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One of each row's preferred categories, weighted by slot and by today's demand."""
    valid = preferences >= 0
    weights = np.asarray(PREFERENCE_SLOT_WEIGHTS) * demand[np.maximum(preferences, 0)] * valid
    slot = pick_slot(weights, rng)
    return preferences[np.arange(len(preferences)), slot]


def assign_favourites(
    customers: Customers,
    day: int,
    sampler: CategorySampler,
    catalog: Catalog,
    rng: np.random.Generator,
) -> None:
    """Give the customers who sign up today their habitual products (launched ones only)."""
    first, stop = np.searchsorted(customers.created_day, [day, day + 1])
    if first == stop:
        return
    prefs = np.repeat(customers.preferences[first:stop], MAX_FAVOURITES, axis=0)
    flat_demand = np.ones(len(catalog.categories))
    categories = preferred_category(prefs, flat_demand, rng)
    products = sample_available(categories, day, sampler, catalog, rng)
    customers.favourites[first:stop] = products.reshape(stop - first, MAX_FAVOURITES)


def change_habits(
    customers: Customers,
    day: int,
    pull: np.ndarray,
    sampler: CategorySampler,
    catalog: Catalog,
    rng: np.random.Generator,
) -> None:
    """New tastes for every customer signed up by ``day`` (a change of regime): preferred
    categories drawn anew with the day's category ``pull`` (the new regime's), and habitual
    products drawn within them as on a sign-up day."""
    stop = int(np.searchsorted(customers.created_day, day, side="right"))
    if stop == 0:
        return
    customers.preferences[:stop] = _category_preferences(stop, len(pull), rng, pull)
    prefs = np.repeat(customers.preferences[:stop], MAX_FAVOURITES, axis=0)
    categories = preferred_category(prefs, np.ones(len(pull)), rng)
    products = sample_available(categories, day, sampler, catalog, rng)
    customers.favourites[:stop] = products.reshape(stop, MAX_FAVOURITES)
