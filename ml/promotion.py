"""The promotion policy: what serves each model, a trained model or a baseline. Pure functions.

The baselines are candidates for champion like the trained models: every decision chooses
among the trained model, the current champion and the baselines evaluated on the same rows,
and a trained model that loses to a baseline never serves. When a baseline wins, the caller
registers it as a *baseline version* (``ml.serving``: a JSON artifact naming it) and promotes
that; the trained model stays a challenger, with the reason on record.

Two entry points:
- :func:`choose_first` (the nightly run's bootstrap, ``shopflow.jobs.nightly.ensure_champion``):
  a model has no champion; the trained model serves if it beats every baseline on the primary
  metric of its holdout, otherwise the best baseline serves. Without any holdout evaluation
  (history too short) the trained model serves, and the reason says so.
- :func:`decide` (``shopflow_retrain``): the strict rule of :class:`PromotionPolicy`. A
  challenger is promoted only if the data it was trained on passed the quality gate, it beats
  every baseline on the primary metric, beats the champion by the margin on the primary metric
  and does not regress on the secondary metrics beyond the tolerance (a baseline champion is
  beaten by beating every baseline by the margin). When the challenger loses to a baseline and
  the champion does too (or there is no champion), the best baseline is to serve
  (``Decision.baseline``). Otherwise the challenger stays a challenger and the reason is
  recorded (``registry_events.action = 'kept_challenger'``).

A *version* here is any registry record with ``version``, ``params`` and ``feature_schema``
attributes (``shopflow.registry.ModelVersion``); this module never reads the registry.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ml.forecast.model import FEATURE_SETS as FORECAST_FEATURE_SETS
from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.forecast.model import ForecastParams
from ml.recommend.ranker import FEATURES as RANKER_FEATURES
from ml.recommend.ranker import MODEL_NAME as RANKER_MODEL
from ml.recommend.ranker import RankerParams
from ml.serving import baseline_of

MODEL_NAMES = (FORECAST_MODEL, RANKER_MODEL)

# primary metric per model and whether higher is better. Forecasts: the headline weekly WAPE
# of units_mean (docs/design.md, "Metrics").
PRIMARY = {
    FORECAST_MODEL: ("weekly_wape", False),
    RANKER_MODEL: ("ndcg_at_10:all", True),
}
# secondary metrics: (loss computed from the metric's value, lower is better; how much worse
# than the champion's the challenger's loss may be, in the metric's own units)
SECONDARY = {
    FORECAST_MODEL: {
        "pinball": (lambda v: v, 0.02),
        "bias": (abs, 0.10),
        "coverage_p10_p90": (lambda v: abs(v - 0.8), 0.05),
    },
    RANKER_MODEL: {"recall_at_10:all": (lambda v: -v, 0.02)},
}
PARAMS = {FORECAST_MODEL: ForecastParams, RANKER_MODEL: RankerParams}
# the feature schemas this code can score, per model: a forecaster is saved with the one-year
# list or with the season's (ml.forecast.model.learns_the_season)
SCHEMAS = {
    FORECAST_MODEL: [list(f) for f in FORECAST_FEATURE_SETS],
    RANKER_MODEL: [list(RANKER_FEATURES)],
}


@dataclass(frozen=True)
class PromotionPolicy:
    """When a challenger replaces the champion (``shopflow_retrain``).

    primary_margin: the challenger's primary metric must be better than the champion's by at
        least this fraction of the champion's value (0.01 = 1 % lower WAPE / higher NDCG).
    secondary_tolerance: per secondary metric, how much worse than the champion's it may be,
        in the metric's own units (defaults in ``SECONDARY``: pinball +0.02, |bias| +0.10,
        |coverage - 0.8| +0.05, recall@10 -0.02).
    min_folds: time folds needed per model. The ranker is evaluated on the newest two pairs
        of consecutive feature cutoffs whose labels are known (``ml.evaluation.RANKER_FOLDS``;
        the training build adds ``training_cutoff_offsets_days``: 28 to 168 days, 28 apart).
    refresh_same_recipe: recipes with the champion's exact parameters tie on every fold by
        construction (training is deterministic); True promotes such a refit on newer data when
        every other rule holds. Off by default: the policy asks for a strict margin.
    """

    primary_margin: float = 0.01
    secondary_tolerance: dict[str, float] = field(
        default_factory=lambda: {
            metric: tolerance
            for spec in SECONDARY.values()
            for metric, (_, tolerance) in spec.items()
        }
    )
    forecast_folds: int = 2
    min_folds: dict[str, int] = field(default_factory=lambda: {FORECAST_MODEL: 2, RANKER_MODEL: 2})
    refresh_same_recipe: bool = False


def incompatibility(model_name: str, version) -> str | None:
    """Why ``version`` cannot score with this code (its feature schema differs), or None."""
    if baseline_of(version) is not None:
        return None  # a baseline reads no feature schema of its own
    if list(version.feature_schema) in SCHEMAS[model_name]:
        return None
    return (
        f"{model_name} {version.version} was trained on a different feature schema than this "
        "code provides; it cannot score"
    )


# -- baselines -------------------------------------------------------------------------------
def beats_baselines(model_name: str, results: dict, candidate: str = "model") -> tuple[bool, str]:
    """Does ``candidate`` beat every baseline on the primary metric? Returns (verdict, reason)."""
    metric, higher_is_better = PRIMARY[model_name]
    if candidate not in results:
        return False, "no holdout evaluation (history too short)"
    mine = results[candidate].get(metric)
    if mine is None or not math.isfinite(mine):
        return False, f"{metric} could not be computed (history too short)"
    worse_than = []
    for name, scores in results.items():
        if not name.startswith("baseline_"):
            continue
        theirs = scores.get(metric)
        if theirs is None or not math.isfinite(theirs):
            continue
        better = mine > theirs if higher_is_better else mine < theirs
        if not better:
            worse_than.append(f"{name} {theirs:.4f}")
    if worse_than:
        return False, f"{metric} {mine:.4f} does not beat " + ", ".join(worse_than)
    return True, f"{metric} {mine:.4f} beats every baseline"


def best_baseline(model_name: str, results: dict) -> str | None:
    """The baseline with the best finite primary metric in ``results`` (ties: name order)."""
    metric, higher_is_better = PRIMARY[model_name]
    scored = [
        (scores.get(metric), name)
        for name, scores in sorted(results.items())
        if name.startswith("baseline_")
        and scores.get(metric) is not None
        and math.isfinite(scores.get(metric))
    ]
    if not scored:
        return None
    sign = -1.0 if higher_is_better else 1.0
    return min(scored, key=lambda pair: (sign * pair[0], pair[1]))[1]


def choose_first(model_name: str, results: dict) -> tuple[str, str]:
    """What serves first when ``model_name`` has no champion: ``"model"`` (the trained model)
    or the name of the best baseline, with the reason. ``results`` is the trained model's
    holdout evaluation (``{"model": ..., "baseline_*": ...}``)."""
    ok, why = beats_baselines(model_name, results)
    if ok:
        return "model", f"first model (bootstrap); {why}"
    best = best_baseline(model_name, results)
    if best is None or model_name not in PRIMARY or "model" not in results:
        return "model", f"first model (bootstrap); {why}; no baseline could be evaluated either"
    metric, _ = PRIMARY[model_name]
    if results["model"].get(metric) is None:
        return "model", f"first model (bootstrap); {why}; no baseline could be compared"
    return best, (
        f"{best} serves (bootstrap): the trained model's {why}; {best} "
        f"{results[best][metric]:.4f} is the best of the baselines on the same holdout"
    )


def params_from_record(model_name: str, version):
    """The version's parameters as this code's params class (unknown keys are dropped)."""
    cls = PARAMS[model_name]
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in version.params.items() if k in known})


# -- the decision ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """The policy's verdict on one challenger, with the reason recorded in the registry."""

    model_name: str
    challenger: str
    champion: str | None
    promote: bool
    reason: str
    # the baseline to register and promote instead of the challenger (None: no change)
    baseline: str | None = None


def decide(
    model_name: str,
    challenger: str,
    champion: str | None,
    evaluation: dict,
    gate: tuple[bool, str],
    policy: PromotionPolicy | None = None,
) -> Decision:
    """Apply the promotion policy to one challenger's fold evaluation. Pure function."""
    policy = policy or PromotionPolicy()
    metric, higher_is_better = PRIMARY[model_name]
    mean = evaluation.get("mean", {})
    n_folds = len(evaluation.get("folds", []))

    def keep(reason: str) -> Decision:
        return Decision(model_name, challenger, champion, False, reason)

    if champion == challenger:
        return keep("already the champion")
    if not gate[0]:
        return keep(f"training data did not pass the quality gate: {gate[1]}")
    if n_folds < policy.min_folds[model_name]:
        return keep(
            f"evaluated on {n_folds} fold(s); the policy needs {policy.min_folds[model_name]}"
        )
    ok, why = beats_baselines(model_name, mean, candidate="challenger")
    folds = f"mean of {n_folds} folds"
    champion_baseline = evaluation.get("champion_baseline")
    if not ok:
        return _baseline_or_keep(model_name, challenger, champion, mean, why, champion_baseline)
    if "champion" not in mean:
        if champion is None:
            return Decision(model_name, challenger, None, True, f"first model; {why} ({folds})")
        note = evaluation.get("champion_note") or "champion could not be evaluated"
        return Decision(model_name, challenger, champion, True, f"{note}; {why} ({folds})")
    mine, theirs = mean["challenger"][metric], mean["champion"][metric]
    gain = (mine - theirs) if higher_is_better else (theirs - mine)
    needed = policy.primary_margin * abs(theirs)
    same_recipe = evaluation.get("same_recipe", False)
    if gain < needed and not (same_recipe and policy.refresh_same_recipe and gain >= 0):
        return keep(
            f"{metric} {mine:.4f} vs champion {theirs:.4f}: does not beat it by the "
            f"{policy.primary_margin:.0%} margin ({folds})"
            + ("; same parameters as the champion" if same_recipe else "")
        )
    if champion_baseline:
        # a baseline has no secondary metrics to protect: beating it on the primary one is
        # what the trained model has to show
        return Decision(
            model_name,
            challenger,
            champion,
            True,
            f"{metric} {mine:.4f} vs champion {champion_baseline} {theirs:.4f} ({folds}); {why}",
        )
    for secondary, (loss, _) in SECONDARY[model_name].items():
        a, b = mean["challenger"].get(secondary), mean["champion"].get(secondary)
        if a is None or b is None:
            continue
        tolerance = policy.secondary_tolerance[secondary]
        if loss(a) - loss(b) > tolerance:
            return keep(
                f"{metric} improves ({mine:.4f} vs {theirs:.4f}) but {secondary} regresses: "
                f"{a:.4f} vs champion {b:.4f} (tolerance {tolerance})"
            )
    return Decision(
        model_name,
        challenger,
        champion,
        True,
        f"{metric} {mine:.4f} vs champion {theirs:.4f} ({folds}); secondary metrics within "
        f"tolerance; {why}",
    )


def _baseline_or_keep(
    model_name: str,
    challenger: str,
    champion: str | None,
    mean: dict,
    why: str,
    champion_baseline: str | None,
) -> Decision:
    """The challenger loses to a baseline: serve the best baseline unless the champion (a
    model beating every baseline, or already that baseline) is at least as good."""
    metric, higher_is_better = PRIMARY[model_name]
    best = best_baseline(model_name, mean)
    if best is None:
        return Decision(model_name, challenger, champion, False, why)
    best_value = mean[best][metric]
    if champion_baseline == best:
        return Decision(model_name, challenger, champion, False, f"{why}; {best} keeps serving")
    if champion is not None and "champion" in mean and not champion_baseline:
        holds, _ = beats_baselines(model_name, mean, candidate="champion")
        if holds:
            return Decision(model_name, challenger, champion, False, why)
        theirs = mean["champion"].get(metric)
        lost = f"champion {champion} {theirs:.4f} also loses to {best} {best_value:.4f}"
    elif champion_baseline:
        lost = f"{best} {best_value:.4f} beats the serving {champion_baseline}"
    elif champion is not None:
        # a champion that could not be evaluated on these folds keeps serving
        return Decision(model_name, challenger, champion, False, why)
    else:
        lost = "no champion yet"
    return Decision(
        model_name,
        challenger,
        champion,
        False,
        f"{why}; {lost}: {best} serves",
        baseline=best,
    )
