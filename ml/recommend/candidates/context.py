"""What the candidate generators see: the feature marts at one cutoff, nothing after it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import pandas as pd


def at_cutoff(frame: pd.DataFrame | None, cutoff: dt.date) -> pd.DataFrame | None:
    """Rows of a per-cutoff feature mart at ``cutoff``."""
    if frame is None:
        return None
    return frame[pd.to_datetime(frame["cutoff_date"]) == pd.Timestamp(cutoff)]


@dataclass
class CandidateContext:
    """Inputs of every generator at one cutoff.

    ``products`` are the products that may be recommended: sold in the 365 days up to the
    cutoff (so nothing unknown at the cutoff is proposed) and, when given, in ``allowed``.
    """

    cutoff: dt.date
    pairs: pd.DataFrame  # feat_customer_product at the cutoff, the customers asked only
    popularity: pd.DataFrame  # feat_product_popularity at the cutoff, products only
    products: set[str]
    cooccurrence: pd.DataFrame | None = None  # feat_product_cooccurrence at the cutoff
    similar: pd.DataFrame | None = None  # product_id, related_product_id, similarity
    purchases: pd.DataFrame | None = None  # customer_id, product_id, ordered_date <= cutoff
    countries: dict[str, str] = field(default_factory=dict)  # customer_id -> country
    # product_id, product_repeat_rate over every customer at the cutoff
    product_repeat: pd.DataFrame | None = None
    # what generators compute once per cutoff whatever the customers (shared by the slices
    # of for_customers)
    cache: dict = field(default_factory=dict)

    def for_customers(self, customers: list[str]) -> CandidateContext:
        """The same context for a subset of its customers (only their pairs), sharing the
        cutoff-wide inputs and cache: candidates for a chunk of customers without rebuilding
        the context."""
        pairs = self.pairs[self.pairs["customer_id"].isin(set(customers))]
        return replace(self, pairs=pairs)

    @classmethod
    def build(
        cls,
        pairs: pd.DataFrame,
        popularity: pd.DataFrame,
        customers: list[str],
        cutoff: dt.date,
        allowed: set[str] | None = None,
        *,
        cooccurrence: pd.DataFrame | None = None,
        similar: pd.DataFrame | None = None,
        purchases: pd.DataFrame | None = None,
        countries: dict[str, str] | None = None,
    ) -> CandidateContext:
        popularity_at = at_cutoff(popularity, cutoff)
        products = set(popularity_at["product_id"])
        if allowed is not None:
            products &= set(allowed)
        popularity_at = popularity_at[popularity_at["product_id"].isin(products)]
        pairs_at = at_cutoff(pairs, cutoff)
        # share of a product's buyers who bought it in more than one order (all customers)
        product_repeat = (
            (pairs_at["pair_orders"] > 1)
            .groupby(pairs_at["product_id"])
            .mean()
            .rename("product_repeat_rate")
            .reset_index()
        )
        pairs_at = pairs_at[pairs_at["customer_id"].isin(set(customers))]
        cooc = at_cutoff(cooccurrence, cutoff)
        if cooc is not None:
            cooc = cooc[cooc["related_product_id"].isin(products)]
        if similar is not None:
            similar = similar[similar["related_product_id"].isin(products)]
        if purchases is not None:
            dates = pd.to_datetime(purchases["ordered_date"])
            purchases = purchases[dates <= pd.Timestamp(cutoff)]
        return cls(
            cutoff=cutoff,
            pairs=pairs_at,
            popularity=popularity_at,
            products=products,
            cooccurrence=cooc,
            similar=similar,
            purchases=purchases,
            countries=dict(countries or {}),
            product_repeat=product_repeat,
        )

    def seeds(self, n: int) -> pd.DataFrame:
        """Each customer's n strongest past products (customer_id, product_id, weight).

        The weight is the pair's recency-weighted order count, so recent, frequent purchases
        steer the item-to-item generators most. Seeds may be products no longer recommendable:
        what a customer bought still says what they like.
        """
        ordered = self.pairs.sort_values(
            ["customer_id", "pair_recency_weighted", "product_id"], ascending=[True, False, True]
        )
        top = ordered[ordered.groupby("customer_id").cumcount() < n]
        return top[["customer_id", "product_id"]].assign(
            weight=top["pair_recency_weighted"].to_numpy()
        )
