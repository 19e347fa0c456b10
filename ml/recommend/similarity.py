"""Content similarity of product names: TF-IDF over words and word pairs, cosine neighbours."""

from __future__ import annotations

import numpy as np
import pandas as pd


def name_neighbours(names: pd.DataFrame, n: int = 20, min_similarity: float = 0.2) -> pd.DataFrame:
    """product_id, related_product_id, similarity: each product's n most similar names.

    ``names`` has product_id and product_name. Products without a usable name (the product id
    itself, empty) get no neighbours.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    columns = ["product_id", "related_product_id", "similarity"]
    text = names["product_name"].fillna("").astype(str).str.lower()
    usable = (text.str.strip() != "") & (text != names["product_id"].astype(str).str.lower())
    names, text = names[usable.to_numpy()], text[usable.to_numpy()]
    if len(names) < 2:
        return pd.DataFrame(columns=columns)
    vectors = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit_transform(text)
    products = names["product_id"].to_numpy(dtype=object)
    k = min(n, len(products) - 1)
    rows, related, values = [], [], []
    # blocks of rows keep the dense similarity slab small (block x products)
    for start in range(0, len(products), 1024):
        block = (vectors[start : start + 1024] @ vectors.T).toarray()
        np.fill_diagonal(block[:, start : start + block.shape[0]], -1.0)
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        top_values = np.take_along_axis(block, top, axis=1)
        keep = top_values >= min_similarity
        rows.append(np.repeat(np.arange(start, start + block.shape[0]), k)[keep.ravel()])
        related.append(top.ravel()[keep.ravel()])
        values.append(top_values.ravel()[keep.ravel()])
    rows, related, values = (np.concatenate(a) for a in (rows, related, values))
    result = pd.DataFrame(
        {
            "product_id": products[rows],
            "related_product_id": products[related],
            "similarity": values,
        }
    )
    return result.sort_values(
        ["product_id", "similarity", "related_product_id"], ascending=[True, False, True]
    ).reset_index(drop=True)
