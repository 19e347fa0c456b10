"""What serves a model name: a trained model or a baseline, loaded from its registry artifact.

A registry version is either a trained model (XGBoost boosters) or a *baseline version*: a
small JSON artifact (``baseline.json``) naming one of the baselines of
``ml.forecast.baselines`` / ``ml.recommend.baselines``, registered and promoted when the
baseline beat the trained model on the same holdout (``ml.promotion``). Its parameters hold
``{"baseline": name}``; the exports' ``model_version`` of its rows is ``<baseline>@<version>``
(:func:`served_label`), so a reader of the exports sees that a baseline serves.
"""

from __future__ import annotations

from pathlib import Path

from ml.baseline_artifact import BASELINE_FILE

FORECAST_MODEL = "demand_forecast"
RANKER_MODEL = "recommendations"


def baseline_of(version) -> str | None:
    """The baseline a registry version serves, or None for a trained model."""
    params = getattr(version, "params", None) or {}
    name = params.get("baseline")
    return str(name) if name else None


def served_label(version) -> str:
    """The ``model_version`` written next to the version's predictions."""
    name = baseline_of(version)
    return f"{name}@{version.version}" if name else version.version


def registry_version(label: str) -> str:
    """The registry version of a ``model_version`` label (inverse of :func:`served_label`)."""
    return label.rpartition("@")[2]


def make_baseline(model_name: str, name: str, *, reason: str, metrics: dict, **params):
    """A servable baseline (``BaselineForecaster`` or ``BaselineRecommender``) for the model."""
    if model_name == FORECAST_MODEL:
        from ml.forecast.baselines import BaselineForecaster

        return BaselineForecaster(name, reason=reason, metrics=metrics, **params)
    from ml.recommend.baselines import BaselineRecommender

    return BaselineRecommender(name, reason=reason, metrics=metrics, **params)


def load_servable(model_name: str, folder: Path):
    """What a registry artifact folder serves: the trained model or the baseline it names."""
    baseline = (folder / BASELINE_FILE).exists()
    if model_name == FORECAST_MODEL:
        if baseline:
            from ml.forecast.baselines import BaselineForecaster

            return BaselineForecaster.load(folder)
        from ml.forecast.model import DemandForecaster

        return DemandForecaster.load(folder)
    if baseline:
        from ml.recommend.baselines import BaselineRecommender

        return BaselineRecommender.load(folder)
    from ml.recommend.ranker import Ranker

    return Ranker.load(folder)
