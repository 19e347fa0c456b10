"""Helpers shared by the candidate generators."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["customer_id", "product_id", "score"]


def empty() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [], "product_id": [], "score": []}).astype(
        {"customer_id": object, "product_id": object, "score": "float64"}
    )


def _sql(query: str, **frames: pd.DataFrame) -> pd.DataFrame:
    """Run ``query`` over in-memory frames with an in-process DuckDB.

    Joining, summing and taking the top n per customer of millions of rows keyed by string
    ids is several times faster there than in pandas. One thread: rows are summed in one
    fixed order, so scores (ranker features) are the same bit for bit on every run.
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("set threads = 1")
        for name, frame in frames.items():
            con.register(name, frame)
        return con.execute(query).df()
    finally:
        con.close()


def top_per_customer(scored: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n highest-scored products per customer (ties: product id), as COLUMNS."""
    top = _sql(
        f"""
        select customer_id, product_id, cast(score as double) as score
        from scored
        qualify row_number() over (
            partition by customer_id order by score desc, product_id
        ) <= {int(n)}
        order by customer_id, score desc, product_id
        """,
        scored=scored[COLUMNS],
    )
    return top.astype({"customer_id": object, "product_id": object})


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
    return _sql(
        f"""
        select
            seeds.customer_id,
            neighbours.related_product_id as product_id,
            sum(seeds.weight * neighbours."{strength}") as score
        from seeds
        inner join neighbours on seeds.product_id = neighbours.product_id
        group by seeds.customer_id, neighbours.related_product_id
        """,
        seeds=seeds[["customer_id", "product_id", "weight"]],
        neighbours=neighbours[["product_id", "related_product_id", strength]],
    )
