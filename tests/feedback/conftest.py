"""A copy of the tiny built shop with 60 run dates of published predictions and baselines."""

from __future__ import annotations

import datetime as dt

import pytest

from shopflow.dbt import run_dbt
from tests.feedback.helpers import write_fake_predictions
from tests.ml.lifecycle_helpers import copy_home

RUN_DATES = 60


@pytest.fixture(scope="session")
def published(built_home, tmp_path_factory):
    """The tiny shop with predictions (and baselines) for the 60 run dates before its last day
    (the tests of this folder build the live models on it as of any of those days)."""
    settings, last = copy_home(built_home, tmp_path_factory.mktemp("live"))
    # the per-cutoff features of every run date in one dbt run (the baselines' lists read them)
    run_dbt(
        settings,
        ["run", "--select", "feat_customer_product", "feat_product_popularity"],
        last,
        extra_vars={"feature_cutoff_offsets_days": list(range(RUN_DATES + 1))},
    )
    for back in range(RUN_DATES, 0, -1):
        write_fake_predictions(settings, last - dt.timedelta(days=back), seed=back)
    return settings, last
