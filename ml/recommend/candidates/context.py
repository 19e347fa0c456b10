"""What the candidate generators see: the feature marts at one cutoff, nothing after it.

The context is an in-process DuckDB database holding the cutoff's inputs as tables keyed by
integer codes (``customer_code``: position of the customer among the sorted customers asked;
``product_code``: position of the product id among every sorted product id the inputs name,
so ordering by code is ordering by id). Generators are SQL queries over those tables, or sparse
matrix products for the item-to-item sources; either way joining, summing and taking the top
n per customer of millions of rows never goes through pandas or string keys. Customers are
asked a chunk at a time (:meth:`CandidateContext.use_customers`): a customer's candidates do
not depend on which other customers are in the chunk.

Repeatable to the bit: every sum runs in one fixed order (sparse products add a row's terms in
product-code order) and every top n orders by score, then product id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

# days of purchases the country popularity looks back on (ml.recommend.candidates.country_popular)
COUNTRY_WINDOW_DAYS = 90


def at_cutoff(frame: pd.DataFrame | None, cutoff: dt.date) -> pd.DataFrame | None:
    """Rows of a per-cutoff feature mart at ``cutoff``."""
    if frame is None:
        return None
    return frame[pd.to_datetime(frame["cutoff_date"]) == pd.Timestamp(cutoff)]


def _has_rows(frame: pd.DataFrame | None) -> bool:
    return frame is not None and not frame.empty


def _ids(values) -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series(list(values), dtype=object).astype(str)})


@dataclass
class CandidateContext:
    """Inputs of every generator at one cutoff, as tables of an in-process DuckDB.

    Tables: ``customer_codes`` / ``product_codes`` (code, id), ``pairs`` (feat_customer_product
    at the cutoff of the customers asked), ``products`` (the products that may be recommended:
    sold in the 365 days up to the cutoff, so nothing unknown at the cutoff is proposed, and in
    ``allowed`` when given, with their feat_product_popularity columns), ``product_repeat``
    (share of a product's buyers who bought it in more than one order, over every customer at
    the cutoff), ``customer_country`` and ``country_popularity``; ``chunk`` and ``chunk_pairs``
    hold the customers of the current chunk (:meth:`use_customers`). The item-to-item
    neighbours (co-occurrence cosine, name similarity) are sparse product x product matrices
    in ``neighbours``, restricted to recommendable related products.
    """

    cutoff: dt.date
    con: duckdb.DuckDBPyConnection
    customers: list[str]  # sorted, distinct: position = customer_code
    neighbours: dict[str, sp.csr_matrix] = field(default_factory=dict)
    has_countries: bool = False
    chunk_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

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
        threads: int = 2,
    ) -> CandidateContext:
        """Load the inputs at ``cutoff`` (rows of other cutoffs and purchases after it are
        dropped here, so no generator can see them)."""
        con = duckdb.connect()
        con.execute(f"set threads = {int(threads)}")
        cutoff_day = pd.Timestamp(cutoff).date()
        day = {"cutoff": cutoff_day}
        asked = sorted(set(str(c) for c in customers))
        con.register("asked_frame", _ids(asked))
        con.execute(
            "create table customer_codes as "
            "select cast(row_number() over (order by id) - 1 as integer) as customer_code, "
            "id as customer_id from asked_frame"
        )
        con.register("popularity_frame", popularity)
        con.register("pairs_frame", pairs)
        sources = [
            "select product_id from popularity_frame",
            "select product_id from pairs_frame",
        ]
        if _has_rows(cooccurrence):
            con.register("cooccurrence_frame", cooccurrence)
            sources += [
                "select product_id from cooccurrence_frame",
                "select related_product_id from cooccurrence_frame",
            ]
        if _has_rows(similar):
            con.register("similar_frame", similar)
            sources += [
                "select product_id from similar_frame",
                "select related_product_id from similar_frame",
            ]
        con.execute(
            "create table product_codes as "
            "select cast(row_number() over (order by product_id) - 1 as integer) as product_code,"
            f" product_id from (select distinct cast(product_id as varchar) as product_id "
            f"from ({' union all '.join(sources)}))"
        )
        allowed_filter = ""
        if allowed is not None:
            con.register("allowed_frame", _ids(sorted(allowed)))
            allowed_filter = "and popularity_frame.product_id in (select id from allowed_frame)"
        con.execute(
            f"""
            create table products as
            select product_codes.product_code, popularity_frame.* exclude (cutoff_date, product_id)
            from popularity_frame
            inner join product_codes
                on product_codes.product_id = cast(popularity_frame.product_id as varchar)
            where cast(popularity_frame.cutoff_date as date) = $cutoff {allowed_filter}
            """,
            day,
        )
        con.execute(
            """
            create table product_repeat as
            select product_code,
                avg(case when cast(pair_orders as double) > 1 then 1.0 else 0.0 end)
                    as product_repeat_rate
            from pairs_frame
            inner join product_codes
                on product_codes.product_id = cast(pairs_frame.product_id as varchar)
            where cast(pairs_frame.cutoff_date as date) = $cutoff
            group by product_code
            """,
            day,
        )
        con.execute(
            """
            create table pairs as
            select customer_codes.customer_code, product_codes.product_code,
                pairs_frame.* exclude (cutoff_date, customer_id, product_id)
            from pairs_frame
            inner join customer_codes
                on customer_codes.customer_id = cast(pairs_frame.customer_id as varchar)
            inner join product_codes
                on product_codes.product_id = cast(pairs_frame.product_id as varchar)
            where cast(pairs_frame.cutoff_date as date) = $cutoff
            """,
            day,
        )
        context = cls(cutoff=cutoff_day, con=con, customers=asked)
        if _has_rows(cooccurrence):
            context.neighbours["cosine"] = context._neighbour_matrix(
                "cooccurrence_frame", "cosine", "where cast(cutoff_date as date) = $cutoff", day
            )
        if _has_rows(similar):
            context.neighbours["similarity"] = context._neighbour_matrix(
                "similar_frame", "similarity", "", {}
            )
        # in a one-country shop the country's favourites are the shop's: the `popular` source
        # under another name, so the country source only exists where countries differ
        if _has_rows(purchases) and len(set(countries.values())) > 1:
            countries_frame = pd.DataFrame(
                {"customer_id": list(countries), "country": list(countries.values())}, dtype=str
            )
            con.register("countries_frame", countries_frame)
            con.execute(
                "create table customer_country as select customer_code, country "
                "from countries_frame inner join customer_codes using (customer_id)"
            )
            con.register(
                "purchases_frame", purchases[["customer_id", "product_id", "ordered_date"]]
            )
            # distinct recent buyers per country and product (once per cutoff: it does not
            # depend on the customers asked)
            con.execute(
                f"""
                create table country_popularity as
                select countries_frame.country, products.product_code,
                    cast(count(distinct purchases_frame.customer_id) as double) as score
                from purchases_frame
                inner join countries_frame
                    on countries_frame.customer_id = cast(purchases_frame.customer_id as varchar)
                inner join product_codes
                    on product_codes.product_id = cast(purchases_frame.product_id as varchar)
                inner join products using (product_code)
                where cast(ordered_date as date) <= $cutoff
                    and cast(ordered_date as date) > $cutoff - interval {COUNTRY_WINDOW_DAYS} day
                group by countries_frame.country, products.product_code
                """,
                day,
            )
            context.has_countries = True
        for name in [
            "asked_frame",
            "popularity_frame",
            "pairs_frame",
            "allowed_frame",
            "cooccurrence_frame",
            "similar_frame",
            "countries_frame",
            "purchases_frame",
        ]:
            try:
                con.unregister(name)
            except duckdb.Error:
                pass
        context.use_customers(asked)
        return context

    def _neighbour_matrix(self, frame: str, strength: str, where: str, params) -> sp.csr_matrix:
        """product x related product -> strength, related products recommendable only."""
        rows = self.con.execute(
            f"""
            select a.product_code as product_code, b.product_code as related_code,
                cast("{strength}" as double) as strength
            from (select * from {frame} {where}) as n
            inner join product_codes as a on a.product_id = cast(n.product_id as varchar)
            inner join product_codes as b on b.product_id = cast(n.related_product_id as varchar)
            where b.product_code in (select product_code from products)
            """,
            params,
        ).fetchnumpy()
        size = self.product_count
        matrix = sp.csr_matrix(
            (rows["strength"], (rows["product_code"], rows["related_code"])), shape=(size, size)
        )
        matrix.sort_indices()
        return matrix

    @property
    def _sorted_ids(self) -> np.ndarray:
        if getattr(self, "_ids_array", None) is None:
            self._ids_array = np.asarray(self.customers, dtype=object)
        return self._ids_array

    def ids_of(
        self, customer_codes: np.ndarray, product_codes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The customer and product ids of codes (object arrays)."""
        if getattr(self, "_product_ids", None) is None:
            rows = self.con.execute("select product_id from product_codes order by product_code")
            self._product_ids = np.asarray([r[0] for r in rows.fetchall()], dtype=object)
        return self._sorted_ids[customer_codes], self._product_ids[product_codes]

    @property
    def product_count(self) -> int:
        return int(self.con.execute("select count(*) from product_codes").fetchall()[0][0])

    def use_customers(self, customers: list[str]) -> CandidateContext:
        """Ask for ``customers`` (a subset of those the context was built for): the tables
        ``chunk`` (customer_code) and ``chunk_pairs`` then hold them only."""
        codes = np.searchsorted(self._sorted_ids, sorted(set(str(c) for c in customers)))
        self.chunk_codes = codes.astype(np.int64)
        self.con.register("chunk_frame", pd.DataFrame({"customer_code": self.chunk_codes}))
        self.con.execute(
            "create or replace table chunk as "
            "select cast(customer_code as integer) as customer_code from chunk_frame"
        )
        self.con.unregister("chunk_frame")
        self.con.execute(
            "create or replace table chunk_pairs as select * from pairs "
            "where customer_code in (select customer_code from chunk)"
        )
        return self

    def register_rows(self, name: str, customer_code, product_code, score) -> str:
        """Register (customer_code, product_code, score) arrays as a view; its name."""
        frame = pd.DataFrame(
            {
                "customer_code": np.asarray(customer_code, dtype=np.int32),
                "product_code": np.asarray(product_code, dtype=np.int32),
                "score": np.asarray(score, dtype=np.float64),
            }
        )
        self.con.register(name, frame)
        return name

    def query(self, sql: str) -> pd.DataFrame:
        """Run ``sql`` over the context's tables; a pandas frame."""
        return self.con.execute(sql).df()

    def columns(self, table: str) -> set[str]:
        """Column names of one of the context's tables."""
        return {r[0] for r in self.con.execute(f"describe {table}").fetchall()}

    def close(self) -> None:
        self.con.close()

    @property
    def products(self) -> set[str]:
        """The products that may be recommended at the cutoff."""
        return {
            r[0]
            for r in self.con.execute(
                "select product_id from products inner join product_codes using (product_code)"
            ).fetchall()
        }
