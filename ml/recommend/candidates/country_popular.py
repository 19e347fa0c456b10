"""``country_popular``: what customers of the same country bought in the last 90 days."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.recommend.candidates._common import empty, top_per_customer
from ml.recommend.candidates.context import CandidateContext

WINDOW_DAYS = 90


def country_popularity(context: CandidateContext) -> pd.DataFrame:
    """country, product_id, score = distinct buyers in the country over the window (computed
    once per context: it does not depend on the customers asked)."""
    if "country_popularity" not in context.cache:
        context.cache["country_popularity"] = _country_popularity(context)
    return context.cache["country_popularity"]


def _country_popularity(context: CandidateContext) -> pd.DataFrame:
    if context.purchases is None or not context.countries:
        return pd.DataFrame(columns=["country", "product_id", "score"])
    start = pd.Timestamp(context.cutoff - dt.timedelta(days=WINDOW_DAYS))
    recent = context.purchases[pd.to_datetime(context.purchases["ordered_date"]) > start]
    recent = recent[recent["product_id"].isin(context.products)]
    recent = recent.assign(country=recent["customer_id"].map(context.countries))
    return (
        recent.dropna(subset=["country"])
        .groupby(["country", "product_id"], as_index=False)["customer_id"]
        .nunique()
        .rename(columns={"customer_id": "score"})
    )


def country_popular_candidates(
    context: CandidateContext, customers: list[str], n: int
) -> pd.DataFrame:
    """The country's n most bought products for each customer with a known country."""
    popular = country_popularity(context)
    if popular.empty:
        return empty()
    ranked = popular.sort_values(["country", "score", "product_id"], ascending=[True, False, True])
    ranked = ranked[ranked.groupby("country").cumcount() < n]
    who = pd.DataFrame({"customer_id": customers})
    who["country"] = who["customer_id"].map(context.countries)
    joined = who.dropna(subset=["country"]).merge(ranked, on="country", how="inner")
    return top_per_customer(joined.astype({"score": "float64"}), n)
