"""The Great Expectations file context and the GX objects Shopflow keeps in it.

The context is rooted at ``$SHOPFLOW_HOME/quality/gx`` (runtime state, never in the repo)
and holds, through GX's public API:

* one pandas data source (``shopflow_frames``) with one DataFrame asset (``frame``) and its
  whole-DataFrame batch definition: every suite validates a frame passed at run time;
* per committed suite, an ExpectationSuite loaded from ``expectations/suites/<name>.json``,
  a ValidationDefinition (that batch definition + the suite) and a Checkpoint running it
  with the suite's result format, all three named after the suite.

On first use of a suite in a process the committed JSON is written into the context (add or
update, only when it differs from what the context holds), so the repo stays the single
source of truth and parallel tasks sharing the folder rarely write.

GX 1.24.1 ships no usage-statistics client (``analytics_enabled`` is only a config field);
its PyPI version checker has no callers, and notification actions (Slack, email, ...) are the
only other network code, which we do not configure. ``analytics_enabled: false`` is still
written to the context config so that a future GX version does not report by default.
Progress bars are switched off: they would fill the Airflow task log.

GX is imported inside functions only: Airflow parses DAG files that import this package.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.quality.suites import build_suite

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations import Checkpoint
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.data_context import FileDataContext

    from shopflow.settings import Settings

_GX_DIR = "gx"
_DATASOURCE_NAME = "shopflow_frames"
_ASSET_NAME = "frame"
_BATCH_DEFINITION_NAME = "whole_frame"


def gx_context_dir(settings: Settings) -> Path:
    """Root of the GX file context (runtime state, not in the repo)."""
    return settings.quality_dir / _GX_DIR


def get_context(settings: Settings) -> FileDataContext:
    """The file context under ``$SHOPFLOW_HOME/quality/gx``, scaffolded on first use."""
    return _open_context(settings.quality_dir.resolve())


@functools.lru_cache(maxsize=8)
def _open_context(quality_dir: Path) -> FileDataContext:
    """Open the file context under ``quality_dir``, scaffolding it on first use (cached)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    quality_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=quality_dir)

    changed = False
    if context.variables.analytics_enabled is not False:
        # Explicit False wins over the GX_ANALYTICS_ENABLED environment variable.
        context.variables.analytics_enabled = False
        changed = True
    progress = context.variables.progress_bars
    if not progress or progress.get("globally") is not False:
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        changed = True
    if changed:
        context.variables.save()

    sources = context.data_sources.all()
    if _DATASOURCE_NAME in sources:
        source = sources[_DATASOURCE_NAME]
    else:
        source = context.data_sources.add_pandas(_DATASOURCE_NAME)
    if _ASSET_NAME in source.get_asset_names():
        asset = source.get_asset(_ASSET_NAME)
    else:
        asset = source.add_dataframe_asset(_ASSET_NAME)
    if not any(b.name == _BATCH_DEFINITION_NAME for b in asset.batch_definitions):
        asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION_NAME)
    return context


def frame_batch_definition(context: FileDataContext) -> BatchDefinition:
    """The whole-DataFrame batch definition every suite validates through."""
    source = context.data_sources.get(_DATASOURCE_NAME)
    return source.get_asset(_ASSET_NAME).get_batch_definition(_BATCH_DEFINITION_NAME)


# Per process: (context root, suite name) -> (spec as canonical JSON, suite in the context).
_synced_suites: dict[tuple[str, str], tuple[str, ExpectationSuite]] = {}


def synced_suite(context: FileDataContext, spec: dict) -> ExpectationSuite:
    """The context's copy of a committed suite, written into the context if it differs."""
    from great_expectations.exceptions import DataContextError

    key = (str(context.root_directory), spec["name"])
    canonical = json.dumps(spec, sort_keys=True)
    cached = _synced_suites.get(key)
    if cached is not None and cached[0] == canonical:
        return cached[1]
    wanted = build_suite(spec)
    try:
        stored = context.suites.get(spec["name"])
    except DataContextError:
        stored = None
    # Write only on change: parallel tasks share the context folder.
    suite = stored if same_rules(stored, wanted) else context.suites.add_or_update(wanted)
    _synced_suites[key] = (canonical, suite)
    return suite


def same_rules(stored: ExpectationSuite | None, wanted: ExpectationSuite) -> bool:
    """Do two suites hold the same rules? Ids are left out: the context gives a suite and its
    expectations ids when it stores them, and a suite built from the committed JSON has none
    (GX's own equality compares them, so it never holds between the two)."""
    if stored is None:
        return False
    return _without_ids(stored.to_json_dict()) == _without_ids(wanted.to_json_dict())


def _without_ids(suite: dict) -> dict:
    return {
        **{k: v for k, v in suite.items() if k != "id"},
        "expectations": [
            {k: v for k, v in e.items() if k != "id"} for e in suite.get("expectations") or []
        ],
    }


# Per process: (context root, suite name) -> (spec and result format as JSON, checkpoint).
_checkpoints: dict[tuple[str, str], tuple[str, Checkpoint]] = {}


def suite_checkpoint(context: FileDataContext, spec: dict, result_format: dict) -> Checkpoint:
    """The Checkpoint that validates a frame against the committed suite ``spec``.

    Suite, ValidationDefinition and Checkpoint are brought in line with ``spec`` and
    ``result_format`` once per process (and again if the committed file changes), writing to
    the context only what differs.
    """
    import great_expectations as gx
    from great_expectations.exceptions import DataContextError

    name = spec["name"]
    key = (str(context.root_directory), name)
    fingerprint = json.dumps([spec, result_format], sort_keys=True)
    cached = _checkpoints.get(key)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]

    # Usually the stored checkpoint already matches: reading it reads its validation
    # definition and suite too, so compare them in memory before writing anything.
    wanted_suite = build_suite(spec)
    batch_definition = frame_batch_definition(context)
    try:
        checkpoint = context.checkpoints.get(name)
    except DataContextError:
        checkpoint = None
    if not _matches(checkpoint, wanted_suite, batch_definition, result_format):
        suite = synced_suite(context, spec)
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
        )
        # No actions: Data Docs are built once per task by shopflow.quality.docs, not once per
        # validated frame.
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[validation],
                actions=[],
                result_format=result_format,
            )
        )
    _synced_suites[key] = (
        json.dumps(spec, sort_keys=True),
        checkpoint.validation_definitions[0].suite,
    )
    _checkpoints[key] = (fingerprint, checkpoint)
    return checkpoint


def _matches(
    checkpoint: Checkpoint | None,
    suite: ExpectationSuite,
    batch_definition: BatchDefinition,
    result_format: dict,
) -> bool:
    """Does the stored checkpoint run exactly ``suite`` on the frame, with ``result_format``?"""
    if checkpoint is None or checkpoint.actions or checkpoint.result_format != result_format:
        return False
    if len(checkpoint.validation_definitions) != 1:
        return False
    (validation,) = checkpoint.validation_definitions
    return (
        validation.name == checkpoint.name
        and same_rules(validation.suite, suite)
        and validation.batch_definition.id == batch_definition.id
    )
