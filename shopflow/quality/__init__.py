"""Data quality: committed Great Expectations suites run against pandas DataFrames.

Three gates use it: ingest (landing suites, every batch before it is loaded), the marts after
``dbt build`` and the predictions before publishing (:func:`validate_marts`,
:func:`validate_predictions`). The package is split along its seams:

* ``suites``: the committed suites under ``expectations/suites/`` and Shopflow's conventions
  on them (severities blocking / warning / quarantine, plain-words descriptions); no GX.
* ``report``: what a validation found, in plain words (:class:`QualityReport`,
  :class:`FailedExpectation`, :class:`QualityGateError`, :func:`raise_if_blocked`); no GX.
* ``context``: the GX file context under ``$SHOPFLOW_HOME/quality/gx`` and, per suite, the
  ExpectationSuite, ValidationDefinition and Checkpoint kept in it (GX's public API).
* ``validation``: :func:`validate_frame`, one frame against one suite.
* ``docs``: Data Docs, built once per task (:func:`build_data_docs`).
* ``gates``: the marts and predictions gates, which read their frames from the warehouse.

Importing the package is cheap (no GX, no pandas): ingest and the DAG files import it, and
Airflow parses DAG files often. GX is imported inside the functions that use it.
"""

from shopflow.quality.context import gx_context_dir
from shopflow.quality.docs import build_data_docs, data_docs_index_path
from shopflow.quality.gates import (
    mart_frames,
    prediction_frames,
    run_suites,
    validate_marts,
    validate_predictions,
)
from shopflow.quality.report import (
    FailedExpectation,
    QualityGateError,
    QualityReport,
    raise_if_blocked,
    reports_dir,
)
from shopflow.quality.suites import (
    BLOCKING,
    EXPECTATION_SEVERITIES,
    QUARANTINE,
    SEVERITIES,
    WARNING,
    load_suite_specs,
    suites_dir,
)
from shopflow.quality.validation import validate_frame

__all__ = [
    "BLOCKING",
    "EXPECTATION_SEVERITIES",
    "QUARANTINE",
    "SEVERITIES",
    "WARNING",
    "FailedExpectation",
    "QualityGateError",
    "QualityReport",
    "build_data_docs",
    "data_docs_index_path",
    "gx_context_dir",
    "load_suite_specs",
    "mart_frames",
    "prediction_frames",
    "raise_if_blocked",
    "reports_dir",
    "run_suites",
    "suites_dir",
    "validate_frame",
    "validate_marts",
    "validate_predictions",
]
