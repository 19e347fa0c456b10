"""The recommender's parameters: candidate depths per source, training sample, booster.

Their own module because both the candidate features and the ranker read them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class RankerParams:
    """How many candidates each source proposes, how training samples, and the booster's
    settings; saved next to the model (``params.json``)."""

    k: int = 10
    popular_candidates: int = 50
    repurchase_candidates: int = 300
    bought_together_candidates: int = 100
    similar_candidates: int = 50
    country_popular_candidates: int = 50
    trending_candidates: int = 20
    # negatives kept per query group when training (0 = all): a random sample is as good for
    # LambdaMART here and makes training on the real year several times faster
    negatives_per_customer: int = 60
    # query groups (customers) sampled per training cutoff (0 = all): bounds training time and
    # memory on large shops; a shop with fewer buyers per cutoff trains on every one of them.
    # Training stacks the six training cutoffs (dbt's training_cutoff_offsets_days): at most
    # 48,000 groups in all, about 2.9 million candidate rows at bench size M
    max_query_groups_per_cutoff: int = 8_000
    num_boost_round: int = 80
    max_depth: int = 6
    learning_rate: float = 0.15
    seed: int = 7
    nthread: int = 2

    def booster_params(self) -> dict:
        """Parameters for ``xgb.train``."""
        return {
            "objective": "rank:ndcg",
            "eval_metric": f"ndcg@{self.k}",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": 0.8,
            "min_child_weight": 1,
            "seed": self.seed,
            "nthread": self.nthread,
        }

    def candidate_sizes(self) -> dict[str, int]:
        """How many products each candidate source proposes per customer."""
        return {
            "repurchase": self.repurchase_candidates,
            "bought_together": self.bought_together_candidates,
            "similar": self.similar_candidates,
            "country_popular": self.country_popular_candidates,
            "trending": self.trending_candidates,
            "popular": self.popular_candidates,
        }

    @classmethod
    def from_dict(cls, values: dict) -> RankerParams:
        """Params from a saved record; fields unknown to this code are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
