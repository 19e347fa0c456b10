"""Stage 1 of the recommender: cheap candidate generators, one small module each.

Every generator reads a :class:`~ml.recommend.candidates.context.CandidateContext` (the feature
marts at one cutoff in an in-process DuckDB, restricted to products that may be recommended)
and proposes rows ``customer, product, score`` — its own proposal score, higher is better —
for the customers of the current chunk, as a SQL query over the context's tables.
:func:`generate_candidates` unions them in one query: one row per (customer, product) with
each source's rank and score as ranker features, and ``reason`` = the first source in
:data:`SOURCES` order that proposed the product.
"""

from __future__ import annotations

from ml.recommend.candidates.context import CandidateContext
from ml.recommend.candidates.union import SOURCES, generate_candidates

__all__ = ["SOURCES", "CandidateContext", "generate_candidates"]
