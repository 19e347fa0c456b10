"""On-call guidance in failure messages: runbook sections exist, links are http URLs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopflow import oncall
from shopflow.quality import FailedExpectation, QualityGateError, QualityReport
from shopflow.settings import PROJECT_ROOT, load_settings

DOCS = PROJECT_ROOT / "docs"


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        {"SHOPFLOW_HOME": str(tmp_path / "home"), "SHOPFLOW_UI_URL": "http://ui:9"}
    )


def headings(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # no "#" lines of code blocks
    return {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize(
    "guidance",
    [*oncall.GUIDANCE.values(), oncall.FALLBACK],
    ids=lambda g: f"{g.doc}#{g.anchor}",
)
def test_every_runbook_link_points_at_an_existing_section(guidance):
    doc = DOCS / guidance.doc
    assert doc.is_file(), doc
    assert guidance.section in headings(doc)
    assert guidance.action.strip()


def test_every_data_error_type_has_its_own_guidance():
    from shopflow.jobs.steps import data_error_types

    names = {t.__name__ for t in data_error_types()}
    assert names <= {name for name, _ in oncall.GUIDANCE}, names


def test_slugify_matches_github_anchors():
    assert oncall.slugify('Runbook: "the model was rolled back last night"') == (
        "runbook-the-model-was-rolled-back-last-night"
    )
    assert oncall.slugify("Reading a file (`ingest_landing`, `LandingFormatError`, blocking)") == (
        "reading-a-file-ingest_landing-landingformaterror-blocking"
    )


def test_links_use_the_ui_url_setting_else_the_local_deployments_port():
    assert load_settings({"SHOPFLOW_UI_URL": "http://a:1/"}).ui_url == "http://a:1"
    assert load_settings({"SHOPFLOW_AIRFLOW_PORT": "8123"}).ui_url == "http://localhost:8123"
    assert load_settings({}).ui_url == "http://localhost:8080"


def test_quality_failure_links_data_docs_page_runbook_and_index(settings):
    page = oncall.data_docs_root(settings) / "validations" / "landing_order_lines" / "batch.html"
    failure = FailedExpectation(
        expectation="expect_column_values_to_be_between",
        column="unit_price",
        description="unit_price is not negative",
        severity="blocking",
        unexpected_count=30,
        unexpected_examples=[-1.0],
    )
    report = QualityReport(
        suite="landing_partitions",
        batch="landing/order_lines/2025-04-10 (landing/order_lines/2025-04-10/orders.csv)",
        success=False,
        blocking_failures=[failure],
        warnings=[],
        evaluated=5,
        data_docs_path=page,
    )
    message = oncall.failure_message(
        "ingest_landing", "2025-04-10", QualityGateError([report]), settings
    )

    assert message.startswith("ingest_landing for 2025-04-10: Data quality gate stopped the run")
    assert "landing/order_lines/2025-04-10/orders.csv" in message
    assert str(settings.home) not in message  # no file paths: links a browser can open
    assert (
        "Data Docs: http://ui:9/shopflow/data-docs/validations/landing_order_lines/batch.html"
        in message
    )
    assert "What to do: the batch named above broke a blocking rule" in message
    assert (
        "Runbook: http://ui:9/shopflow/docs/runbooks/quality_gate.md"
        "#partition-rules-suite-landing_partitions-blocking" in message
    )
    assert message.endswith("Data Docs index: http://ui:9/shopflow/data-docs/index.html")


def test_the_step_picks_the_quality_section(settings):
    assert oncall.guidance_for("QualityGateError", "validate_marts").anchor.startswith("marts-")
    assert oncall.guidance_for("QualityGateError", "validate_predictions").anchor.startswith(
        "predictions-"
    )
    assert oncall.guidance_for("QualityGateError", "some_new_step").section == "Where to look"
    assert oncall.guidance_for("SomethingElse") is oncall.FALLBACK


def test_model_errors_point_at_the_models_runbook_without_data_docs(settings):
    from shopflow.registry import ArtifactIntegrityError

    error = ArtifactIntegrityError("demand_forecast v1: artifact checksum abc does not match")
    message = oncall.failure_message("score_forecast", "2025-04-10", error, settings)
    lines = message.splitlines()
    assert lines[0] == f"score_forecast for 2025-04-10: {error}"
    assert lines[1].startswith("What to do: the champion's files on disk")
    assert lines[2] == (
        "Runbook: http://ui:9/shopflow/docs/runbooks/models.md"
        "#a-model-artifact-is-missing-or-corrupted"
    )
    assert "Data Docs" not in message
