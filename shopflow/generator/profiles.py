"""Shop profiles: what kind of shop the generator simulates (``ShopSpec.profile``).

- ``wholesale`` (the default, the demo): today's shop. Eight European countries, EUR, habitual
  reorders by a loyal base with a few wholesale buyers, a stable catalogue.
- ``marketplace``: one country (BR, prices in BRL, customers in America/Sao_Paulo), most
  customers buy once, on the day they sign up (``first_order_on_signup``; returning orders are
  rare), orders of one or two lines, no wholesale buyers, no favourites, and a long tail of slow
  products (steeper popularity, so most products sell a few units a month or less).
- ``fashion``: strong seasons (category seasons 2.5 times as pronounced, a shop-wide winter
  high and summer low of +-45 %), short product lives
  (``product_life_days``; a category's first product stays as its basic line), collections
  launched in waves every four weeks, few habitual reorders.

The wholesale profile's values are what the generator always used, and nothing draws a random
number for a knob it leaves at its default: the default output is unchanged, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopflow.generator.common import COUNTRIES, COUNTRY_WEIGHTS


@dataclass(frozen=True)
class Profile:
    """The knobs a profile turns (defaults: the wholesale shop)."""

    name: str
    countries: tuple[str, ...] = COUNTRIES
    country_weights: tuple[float, ...] = COUNTRY_WEIGHTS
    currency: str = "EUR"
    timezone: str = "Europe/Berlin"
    # customers
    initial_customer_share: float = 0.35
    wholesale_share: float = 0.01
    favourite_share_scale: float = 1.0  # x each customer's share of habitual reorders
    first_order_on_signup: bool = False  # every customer orders once on the sign-up day
    orders_per_customer_day: float = 0.05  # the calendar's orders (returning and guests)
    # orders
    lines_geometric_p: float = 0.45
    # products
    zipf_exponent: float = 1.1
    initial_product_share: float = 0.6
    launch_wave_days: int = 0  # >0: launches fall on the first day of every wave
    product_life_days: int = 0  # >0: products stop selling this many days after launch
    season_scale: float = 1.0  # x each category's season amplitude (capped at 0.9)
    yearly_amplitude: float = 0.12  # the whole shop's winter high / summer dip


PROFILES: dict[str, Profile] = {
    "wholesale": Profile("wholesale"),
    "marketplace": Profile(
        "marketplace",
        countries=("BR",),
        country_weights=(1.0,),
        currency="BRL",
        timezone="America/Sao_Paulo",
        initial_customer_share=0.0,
        wholesale_share=0.0,
        favourite_share_scale=0.0,
        first_order_on_signup=True,
        orders_per_customer_day=0.0003,
        lines_geometric_p=0.8,
        zipf_exponent=1.2,
        initial_product_share=0.8,
    ),
    "fashion": Profile(
        "fashion",
        favourite_share_scale=0.25,
        initial_product_share=0.15,
        launch_wave_days=28,
        product_life_days=84,
        season_scale=2.5,
        yearly_amplitude=0.45,
    ),
}


def profile_of(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown shop profile {name!r}; known: {', '.join(PROFILES)}") from None
