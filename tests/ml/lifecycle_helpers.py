"""Shared set-up for the lifecycle tests: a published copy of the tiny built shop."""

from __future__ import annotations

import shutil

from ml.forecast.model import ForecastParams
from ml.recommend.ranker import RankerParams
from shopflow.jobs.retrain import train_model
from shopflow.registry import Registry
from tests.conftest import make_settings

# small recipes keep the tests fast; WEAK is clearly worse than MID on the tiny shop
WEAK = {
    "demand_forecast": ForecastParams(num_boost_round=3, max_depth=1),
    "recommendations": RankerParams(num_boost_round=2, max_depth=1),
}
MID = {
    "demand_forecast": ForecastParams(num_boost_round=40, max_depth=4),
    "recommendations": RankerParams(num_boost_round=20, max_depth=3),
}


def copy_home(built_home, target):
    """A private copy of the session's built shop (tests mutate registry and exports)."""
    settings, run_date = built_home
    shutil.copytree(settings.home, target / "home", symlinks=True)  # exports stays a link
    return make_settings(target / "home"), run_date


def promote_trained(settings, run_date, params: dict, reason: str) -> dict[str, str]:
    """Train each model with ``params`` and make it champion (bypassing the policy)."""
    registry = Registry(settings)
    versions = {}
    for name, recipe in params.items():
        version = train_model(settings, name, run_date, created_by="test", params=recipe)
        registry.promote(name, version.version.version, actor="test", reason=reason)
        versions[name] = version.version.version
    return versions
