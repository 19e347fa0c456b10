"""The day-by-day simulation that ties the parts together: :func:`generate_shop`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shopflow.generator.catalogue import build_catalog
from shopflow.generator.customers import assign_favourites, build_customers, change_habits
from shopflow.generator.demand import demand_calendar
from shopflow.generator.lines import Lines, concat_lines, count_orders
from shopflow.generator.orders import simulate_sales
from shopflow.generator.prices import PriceBook
from shopflow.generator.profiles import Profile, profile_of
from shopflow.generator.promotions import plan_promotions
from shopflow.generator.returns import materialise_returns, schedule_returns
from shopflow.generator.sampling import CategorySampler
from shopflow.generator.spec import GeneratedShop, ShopSpec
from shopflow.generator.writing import order_lines_frame, write_customers, write_products
from shopflow.landing import write_partition


@dataclass
class _Counters:
    orders: int = 0
    returns: int = 0
    lines: int = 0
    return_lines: int = 0


def on_sale(catalog, day: int, profile: Profile) -> np.ndarray:
    """Which products can be drawn on ``day``: launched, and not past their life (a
    category's anchor, its basic line, never retires)."""
    launched = catalog.launch_day <= day
    if not profile.product_life_days:
        return launched
    alive = day < catalog.launch_day + profile.product_life_days
    alive[catalog.anchors] = True
    return launched & alive


def generate_shop(spec: ShopSpec, landing_dir: Path) -> GeneratedShop:
    """Simulate the shop described by ``spec`` and write its landing partitions.

    Writes ``order_lines/<date>/part-0.parquet`` for every day of the period (possibly empty),
    ``products/<date>/part-0.parquet`` on every launch date and
    ``customers/<date>/part-0.parquet`` on every sign-up date. Files of the same names are
    replaced, others are left alone (use an empty folder). The same spec gives byte-identical
    files.
    """
    landing_dir = Path(landing_dir)
    profile = profile_of(spec.profile)
    rng = np.random.default_rng(spec.seed)
    catalog = build_catalog(spec, rng)
    customers = build_customers(spec, len(catalog.categories), rng)
    promotions = plan_promotions(spec, catalog.categories, rng)
    calendar = demand_calendar(spec, catalog.categories, promotions)
    price_book = PriceBook.plan(spec, catalog, rng)

    partitions = write_products(spec, catalog, landing_dir)
    partitions += write_customers(spec, customers, landing_dir, profile)

    # the day customers change habits (regime_new_habits), if ever
    habits_day = (spec.regime_change - spec.start).days if spec.regime_new_habits else None
    counters = _Counters()
    pending_returns: dict[int, list[Lines]] = {}
    for day in range(spec.days):
        date = spec.start + dt.timedelta(days=day)
        # Only launched products can be drawn today.
        selling = on_sale(catalog, day, profile)
        sampler = CategorySampler.build(
            catalog.popularity * selling,
            catalog.by_category,
            catalog.bounds,
        )
        if day == habits_day:
            change_habits(customers, day, calendar.category_demand[day], sampler, catalog, rng)
        assign_favourites(customers, day, sampler, catalog, rng)
        prices = price_book.advance_to(day)
        sales = simulate_sales(
            day,
            counters.orders + 1,
            catalog,
            customers,
            calendar,
            sampler,
            prices,
            rng,
            profile,
            selling if profile.product_life_days else None,
        )
        counters.orders += count_orders(sales)
        returns = materialise_returns(pending_returns.pop(day, []), counters.returns + 1, rng)
        counters.returns += count_orders(returns)
        counters.return_lines += len(returns.product)
        schedule_returns(sales, day, spec.days, pending_returns, rng)
        lines = concat_lines([sales, returns])
        counters.lines += len(lines.product)
        frame = order_lines_frame(date, lines, catalog, customers, profile)
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
