"""Helpers shared by the candidate generators."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["customer_id", "product_id", "score"]


def empty() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [], "product_id": [], "score": []}).astype(
        {"customer_id": object, "product_id": object, "score": "float64"}
    )


def top_per_customer(scored: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n highest-scored products per customer (ties: product id), as COLUMNS."""
    ordered = scored.sort_values(
        ["customer_id", "score", "product_id"], ascending=[True, False, True]
    )
    return ordered[ordered.groupby("customer_id").cumcount() < n][COLUMNS].reset_index(drop=True)


def same_list_for_all(customers: list[str], ranked: pd.DataFrame) -> pd.DataFrame:
    """Cross the customers with one ranked product list (product_id, score)."""
    import numpy as np

    n = len(ranked)
    return pd.DataFrame(
        {
            "customer_id": np.repeat(np.asarray(customers, dtype=object), n),
            "product_id": np.tile(ranked["product_id"].to_numpy(dtype=object), len(customers)),
            "score": np.tile(ranked["score"].to_numpy(dtype="float64"), len(customers)),
        }
    )


def expand_seeds(seeds: pd.DataFrame, neighbours: pd.DataFrame, strength: str) -> pd.DataFrame:
    """Σ over a customer's seed products of seed weight × neighbour strength, per product.

    ``neighbours`` has product_id, related_product_id and the ``strength`` column.
    """
    joined = seeds.merge(neighbours, on="product_id", how="inner")
    joined["score"] = joined["weight"] * joined[strength]
    return (
        joined.groupby(["customer_id", "related_product_id"], as_index=False)["score"]
        .sum()
        .rename(columns={"related_product_id": "product_id"})
    )
