"""Champion/challenger retraining (``shopflow_retrain``): training sets, challengers,
evaluation, promotion, with the registry writes.

The retraining steps run as separate Airflow tasks; what one step hands to the next is kept
in ``$SHOPFLOW_HOME/models/retrain/<date>/*.json`` (rerunning a step replaces its file) and
every decision lands in the registry, where SQL can see it. The policy itself is
:mod:`ml.promotion`; training and evaluation are :mod:`ml.training` and :mod:`ml.evaluation`
on frames read by :mod:`shopflow.jobs.inputs`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ml.evaluation import evaluate_forecast_recipes, evaluate_ranker_recipes
from ml.features import frame_fingerprint
from ml.forecast.model import MODEL_NAME as FORECAST_MODEL
from ml.forecast.model import ForecastParams, build_training_frame
from ml.promotion import (
    MODEL_NAMES,
    PARAMS,
    PromotionPolicy,
    decide,
    incompatibility,
    params_from_record,
)
from ml.recommend.ranker import RankerParams
from ml.serving import baseline_of, make_baseline
from ml.training import TrainedModel, train_forecaster, train_ranker
from shopflow import dbt
from shopflow.ingest import changed_partitions, read_manifest
from shopflow.jobs.inputs import read_training_forecast_inputs, read_training_recommend_inputs
from shopflow.jobs.published import published_run_dates
from shopflow.progress import progress
from shopflow.registry import ModelVersion, Registry
from shopflow.warehouse import connect, features_built_as_of, table_exists

log = logging.getLogger(__name__)

RETRAIN_ACTOR = "shopflow_retrain"


class RetrainNotPossibleError(RuntimeError):
    """The warehouse or registry is not in a state a retrain can start from (not retried)."""


@dataclass
class TrainingResult:
    """A registered challenger and its holdout evaluation (model and baselines)."""

    version: ModelVersion
    metrics: dict


def register_trained(registry: Registry, trained: TrainedModel, *, created_by: str) -> ModelVersion:
    """Save a trained model (its own ``save``: UBJSON + JSON) and register it as a challenger."""
    with tempfile.TemporaryDirectory(dir=registry.settings.tmp_dir) as tmp:
        staged = Path(tmp) / "artifact"
        trained.model.save(staged)
        return registry.register(
            trained.model_name, staged, created_by=created_by, **trained.record()
        )


def register_baseline(
    settings,
    model_name: str,
    baseline: str,
    cutoff_date: dt.date,
    results: dict,
    *,
    reason: str,
    created_by: str,
) -> ModelVersion:
    """Register ``baseline`` as a servable version of ``model_name`` (a challenger until the
    caller promotes it): a JSON artifact naming the baseline, with its metrics and the reason.

    ``results`` is the evaluation it won (``{candidate: {metric: value}}``); the version's own
    scores are recorded as ``model`` next to every baseline's, as for a trained model."""
    own = {"model": results[baseline]}
    own.update({name: scores for name, scores in results.items() if name.startswith("baseline_")})
    servable = make_baseline(model_name, baseline, reason=reason, metrics=own)
    registry = Registry(settings)
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir) as tmp:
        staged = Path(tmp) / "artifact"
        servable.save(staged)
        return registry.register(
            model_name,
            staged,
            cutoff_date=cutoff_date,
            params=servable.params,
            feature_schema=[],
            metrics={"serving": baseline, "reason": reason, "results": own},
            data_fingerprint={},
            created_by=created_by,
        )


# -- training --------------------------------------------------------------------------------
def training_inputs(settings, model_name: str, run_date: dt.date):
    """What ``model_name`` trains and is evaluated on, as of ``run_date`` (reads only)."""
    if model_name == FORECAST_MODEL:
        return read_training_forecast_inputs(settings, run_date)
    return read_training_recommend_inputs(settings, run_date)


def train_model(
    settings,
    model_name: str,
    run_date: dt.date,
    *,
    created_by: str,
    params: ForecastParams | RankerParams | None = None,
) -> TrainingResult:
    """Train ``model_name`` on everything up to ``run_date`` and register it as a challenger
    (never promoted here). Reads the warehouse, writes only the registry. Its folds and fits
    are shown as they go (:mod:`shopflow.progress`, on stderr)."""
    with progress(f"training {model_name} as of {run_date}") as shown:
        shown.phase("reading the training inputs")
        inputs = training_inputs(settings, model_name, run_date)
        if model_name == FORECAST_MODEL:
            trained = train_forecaster(inputs, run_date, params=params, on_phase=shown.phase)
        else:
            trained = train_ranker(inputs, run_date, params=params, on_phase=shown.phase)
        shown.phase("registering the challenger")
        version = register_trained(Registry(settings), trained, created_by=created_by)
    return TrainingResult(version, trained.results)


# -- retraining state between tasks ----------------------------------------------------------
def retrain_dir(settings, run_date: dt.date) -> Path:
    """Where the retrain for ``run_date`` keeps what one step hands to the next."""
    return settings.models_dir / "retrain" / run_date.isoformat()


def _write_state(settings, run_date: dt.date, name: str, payload: dict) -> dict:
    folder = retrain_dir(settings, run_date)
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f"{name}.json.tmp"
    staged.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    staged.replace(folder / f"{name}.json")
    return payload


def _read_state(settings, run_date: dt.date, name: str) -> dict:
    path = retrain_dir(settings, run_date) / f"{name}.json"
    if not path.exists():
        raise RetrainNotPossibleError(
            f"{path} is missing: run the earlier shopflow_retrain steps for {run_date} first"
        )
    return json.loads(path.read_text())


# -- the training cutoff and the quality gate on its data ------------------------------------
def training_data_gate(settings, cutoff: dt.date) -> tuple[bool, str]:
    """Did the data the models train on (everything up to ``cutoff``) pass the quality gate?

    Yes when the nightly run for ``cutoff`` published (so its landing suites, dbt tests and
    prediction suites passed) and no landing partition dated on or before ``cutoff`` is new or
    changed since it was validated (``raw.landing_manifest`` fingerprints).
    """
    if cutoff not in published_run_dates(settings):
        return False, (
            f"the nightly run for {cutoff} has not published (its quality gates did not all "
            f"pass, or it did not run); run `shopflow run --date {cutoff}` first"
        )
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "raw", "landing_manifest"):
            return False, "no landing data was ever ingested (raw.landing_manifest is missing)"
        manifest = read_manifest(con)
    pending = changed_partitions(settings, cutoff, manifest)
    if pending:
        names = ", ".join(f"{p.entity}/{p.partition_date}" for p, _ in pending[:5])
        return False, (
            f"{len(pending)} landing partition(s) up to {cutoff} are new or changed since they "
            f"passed the landing gate ({names}); rerun `shopflow run --date {cutoff}` first"
        )
    return True, f"the nightly run for {cutoff} published and its landing data is unchanged"


def build_training_sets(settings, run_date: dt.date) -> dict:
    """Fix the training cutoff (the latest date the warehouse is built for, at most
    ``run_date``), check the quality gate on its data and record the training sets' fingerprints.

    The warehouse is not rebuilt here: rebuilding it for another date between the nightly
    run's tasks would hand them the wrong features. The nightly run builds it.
    """
    built = features_built_as_of(settings)
    if built is None:
        raise RetrainNotPossibleError(
            "the warehouse has no feature marts: run `shopflow run --date <date>` first"
        )
    if built > run_date:
        raise RetrainNotPossibleError(
            f"the warehouse is built as of {built}, after {run_date}: retrain for {built} "
            f"(`shopflow retrain --date {built}`), or first `shopflow run --date {run_date}`"
        )
    passed, reason = training_data_gate(settings, built)
    if not passed:
        log.warning("training data gate for %s: %s", built, reason)
    feat = read_training_forecast_inputs(settings, built).feat
    fingerprint = frame_fingerprint(build_training_frame(feat, built, ForecastParams()))
    return _write_state(
        settings,
        run_date,
        "gate",
        {
            "cutoff": built.isoformat(),
            "passed": passed,
            "reason": reason,
            "forecast_training_set": fingerprint,
        },
    )


def retrain_cutoff(settings, run_date: dt.date) -> dt.date:
    """The training cutoff ``build_training_sets`` fixed for the retrain of ``run_date``."""
    return dt.date.fromisoformat(_read_state(settings, run_date, "gate")["cutoff"])


def build_training_features(settings, run_date: dt.date) -> dict:
    """Add the ranker's training cutoffs (cutoff - 28 ... 168 days) to the per-cutoff feature
    models, as of the retrain's cutoff: the one warehouse write of a retrain (dbt, under the
    warehouse lock), so that training and evaluation only read."""
    return dbt.build_training_features(settings, retrain_cutoff(settings, run_date)).summary()


# -- challengers ---------------------------------------------------------------------------
def challenger_params_path(settings) -> Path:
    """The file of parameter overrides for the next challengers."""
    return settings.models_dir / "challenger_params.json"


def challenger_params(settings) -> dict[str, object]:
    """Parameter overrides for the next challengers, from ``models/challenger_params.json``:
    ``{"demand_forecast": {"max_depth": 4}, ...}`` (absent: the training defaults). This is how a
    new recipe is tried: write the file, run `shopflow retrain --date D`, read the decision."""
    path = challenger_params_path(settings)
    if not path.exists():
        return {}
    overrides = json.loads(path.read_text())
    out = {}
    for name, values in overrides.items():
        if name not in PARAMS:
            raise RetrainNotPossibleError(f"{path}: unknown model {name!r}")
        out[name] = PARAMS[name](**{**dataclasses.asdict(PARAMS[name]()), **values})
    return out


def train_challengers(
    settings,
    run_date: dt.date,
    params: dict[str, object] | None = None,
    models: tuple[str, ...] = MODEL_NAMES,
) -> dict:
    """Train one challenger per model on everything up to the retrain's cutoff.

    ``params`` (model name -> params) overrides the training defaults; without it the
    overrides of :func:`challenger_params` apply.
    """
    params = challenger_params(settings) if params is None else params
    cutoff = retrain_cutoff(settings, run_date)
    challengers = {}
    for name in models:
        result = train_model(
            settings, name, cutoff, created_by=RETRAIN_ACTOR, params=params.get(name)
        )
        challengers[name] = result.version.version
        log.info("%s: challenger %s", name, result.version.version)
    return _write_state(settings, run_date, "challengers", challengers)


def evaluate_challenger(
    settings, model_name: str, run_date: dt.date, challenger: ModelVersion, policy=None
) -> dict:
    """Challenger, champion and baselines on the same time folds; stored in the registry."""
    policy = policy or PromotionPolicy()
    registry = Registry(settings)
    champion = registry.champion(model_name)
    recipes = {"challenger": params_from_record(model_name, challenger)}
    champion_note = None
    champion_baseline = baseline_of(champion) if champion is not None else None
    if champion_baseline:
        pass  # a baseline champion is scored below, as the baseline it is
    elif champion is not None and champion.version != challenger.version:
        if incompatibility(model_name, champion) is None:
            recipes["champion"] = params_from_record(model_name, champion)
        else:
            champion_note = "champion's feature schema differs from this code's; it cannot score"
    with progress(f"evaluating {model_name} {challenger.version} as of {run_date}") as shown:
        shown.phase("reading the inputs")
        inputs = training_inputs(settings, model_name, run_date)
        if model_name == FORECAST_MODEL:
            evaluation = evaluate_forecast_recipes(
                inputs, run_date, recipes, n_folds=policy.forecast_folds, on_phase=shown.phase
            )
        else:
            evaluation = evaluate_ranker_recipes(inputs, run_date, recipes, shown.phase)
    result = evaluation.as_dict()
    result["champion_note"] = champion_note
    result["champion_baseline"] = champion_baseline
    if champion_baseline and champion_baseline in result["mean"]:
        # the serving baseline, on the same folds as every other baseline
        result["mean"]["champion"] = result["mean"][champion_baseline]
    result["same_recipe"] = recipes.get("champion") == recipes["challenger"]
    registry.record_evaluation(
        model_name,
        challenger.version,
        champion.version if champion else None,
        run_date,
        evaluation.as_dict(),
    )
    return result


def evaluate_challengers(settings, run_date: dt.date, policy=None) -> dict:
    """Evaluate every challenger of the retrain of ``run_date`` (see evaluate_challenger)."""
    registry = Registry(settings)
    cutoff = retrain_cutoff(settings, run_date)
    out = {}
    for name, version in _read_state(settings, run_date, "challengers").items():
        challenger = registry.get(name, version)
        out[name] = evaluate_challenger(settings, name, cutoff, challenger, policy)
    return _write_state(settings, run_date, "evaluation", out)


def promote_or_keep(settings, run_date: dt.date, policy: PromotionPolicy | None = None) -> dict:
    """Promote each challenger that passes the policy; record why the others stay challengers."""
    registry = Registry(settings)
    gate = _read_state(settings, run_date, "gate")
    evaluations = _read_state(settings, run_date, "evaluation")
    out = {}
    for name, version in _read_state(settings, run_date, "challengers").items():
        champion = registry.champion(name)
        decision = decide(
            name,
            version,
            champion.version if champion else None,
            evaluations[name],
            (gate["passed"], gate["reason"]),
            policy,
        )
        if decision.promote:
            registry.promote(name, version, actor=RETRAIN_ACTOR, reason=decision.reason)
        elif decision.baseline:
            serving = register_baseline(
                settings,
                name,
                decision.baseline,
                retrain_cutoff(settings, run_date),
                evaluations[name]["mean"],
                reason=decision.reason,
                created_by=RETRAIN_ACTOR,
            )
            registry.promote(name, serving.version, actor=RETRAIN_ACTOR, reason=decision.reason)
            registry.record_decision(
                name, version, action="kept_challenger", actor=RETRAIN_ACTOR, reason=decision.reason
            )
            log.warning("%s: %s", name, decision.reason)
        elif decision.reason != "already the champion":
            registry.record_decision(
                name, version, action="kept_challenger", actor=RETRAIN_ACTOR, reason=decision.reason
            )
        log.info("%s %s: %s: %s", name, version, "promoted" if decision.promote else "kept",
                 decision.reason)  # fmt: skip
        out[name] = dataclasses.asdict(decision)
    return _write_state(settings, run_date, "decisions", out)
