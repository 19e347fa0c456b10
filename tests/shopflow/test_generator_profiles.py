"""Shop profiles of the generator: the wholesale default is today's shop, marketplace and
fashion differ where they say they do."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopflow.generator import ShopSpec, generate_shop
from shopflow.generator.catalogue import build_catalog
from shopflow.generator.profiles import PROFILES

SPEC = dict(customers=1500, products=400, days=365, start=dt.date(2025, 1, 1), seed=5)


def _lines(landing: Path) -> pd.DataFrame:
    files = sorted((landing / "order_lines").rglob("*.parquet"))
    lines = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    return lines[lines["quantity"] > 0].reset_index(drop=True)


def _digest(landing: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(landing)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def shops(tmp_path_factory) -> dict[str, pd.DataFrame]:
    out = {}
    for name in PROFILES:
        landing = tmp_path_factory.mktemp(name)
        generate_shop(ShopSpec(**SPEC, profile=name), landing)
        out[name] = _lines(landing)
    return out


def test_the_wholesale_profile_is_the_default_shop_byte_for_byte(tmp_path):
    small = dict(customers=200, products=50, days=60)
    generate_shop(ShopSpec(**small), tmp_path / "default")
    generate_shop(ShopSpec(**small, profile="wholesale"), tmp_path / "wholesale")
    assert _digest(tmp_path / "default") == _digest(tmp_path / "wholesale")


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown shop profile 'outlet'"):
        ShopSpec(profile="outlet")


def _repurchase_share(lines: pd.DataFrame) -> float:
    """Share of registered customers' lines whose product the customer bought in an earlier
    order."""
    registered = lines[lines["customer_id"].notna()].sort_values(["ordered_at", "order_id"])
    first = registered.groupby(["customer_id", "product_id"])["order_id"].transform("first")
    return float((registered["order_id"] != first).mean())


def test_marketplace_customers_buy_once_in_one_country_in_brl(shops):
    lines = shops["marketplace"]
    orders = lines[lines["customer_id"].notna()].groupby("customer_id")["order_id"].nunique()
    assert (orders == 1).mean() > 0.8
    assert _repurchase_share(lines) < 0.02 < _repurchase_share(shops["wholesale"])
    assert set(lines["country"]) == {"BR"} and set(lines["currency"]) == {"BRL"}
    assert len(lines) / lines["order_id"].nunique() < 1.5


def test_marketplace_products_sell_slowly_in_a_long_tail(shops):
    units = shops["marketplace"].groupby("product_id")["quantity"].sum()
    wholesale = shops["wholesale"].groupby("product_id")["quantity"].sum()
    assert units.median() < 0.1 * wholesale.median()
    # the most popular tenth of the products sells more than half of the units
    top = units.sort_values(ascending=False).head(max(1, len(units) // 10)).sum()
    assert top > 0.5 * units.sum()


def test_fashion_has_strong_seasons_and_short_product_lives(shops):
    def season_range(lines):
        monthly = lines.groupby(lines["ordered_at"].dt.month)["quantity"].sum()
        return monthly.max() / monthly.min()

    assert season_range(shops["fashion"]) > 2.0 > season_range(shops["wholesale"])

    def median_life(lines):
        dates = lines.groupby("product_id")["ordered_at"].agg(["min", "max"])
        return (dates["max"] - dates["min"]).dt.days.median()

    assert median_life(shops["fashion"]) < 100 < median_life(shops["wholesale"])
    # collections: launches come in waves, every 28 days (the catalogue is the first draw)
    spec = ShopSpec(**SPEC, profile="fashion")
    launches = set(build_catalog(spec, np.random.default_rng(spec.seed)).launch_day.tolist())
    assert launches <= set(range(0, 365, 28)) and len(launches) > 10


def test_the_command_offers_every_profile():
    from shopflow.cli import SHOP_PROFILES, build_parser

    assert set(SHOP_PROFILES) == set(PROFILES)
    args = build_parser().parse_args(["generate", "--profile", "fashion"])
    assert args.profile == "fashion"
