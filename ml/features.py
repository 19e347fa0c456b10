"""What the models take as input: frames of the warehouse's feature marts, as of a date.

Reading them is :mod:`shopflow.jobs.inputs`' job (every reader there filters on the date it
is given, so a caller cannot accidentally hand a model rows from after its cutoff); this
module only holds their shape and the fingerprint the registry records of a training frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class ForecastInputs:
    feat: pd.DataFrame  # feat_product_daily rows up to the date


@dataclass
class RecommendInputs:
    pairs: pd.DataFrame  # feat_customer_product (all cutoffs built for this run)
    popularity: pd.DataFrame  # feat_product_popularity
    purchases: pd.DataFrame  # customer_id, product_id, ordered_date (merchandise, no returns)
    active_customers: list[str]
    sellable: set[str]
    cooccurrence: pd.DataFrame | None = None  # feat_product_cooccurrence (all cutoffs)
    similar: pd.DataFrame | None = None  # product name neighbours (ml.recommend.similarity)
    countries: dict[str, str] = field(default_factory=dict)  # customer_id -> country


def frame_fingerprint(frame: pd.DataFrame) -> dict:
    """Row count and a content checksum of a training frame (for the registry record)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return {
        "rows": int(len(frame)),
        "columns": int(frame.shape[1]),
        "sha256": hashlib.sha256(hashed.tobytes()).hexdigest(),
    }
