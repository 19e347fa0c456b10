"""`make backtest` reads: after a night has run, its commands leave every published file, the
registry and the warehouse byte-identical."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pytest

from shopflow.cli import main
from shopflow.jobs.steps import NIGHTLY_STEPS
from tests.conftest import REPO_ROOT
from tests.ml.lifecycle_helpers import WEAK, copy_home, promote_trained


def make_backtest_commands(makefile: Path = REPO_ROOT / "Makefile") -> list[list[str]]:
    """The `shopflow` argument lists of the Makefile's ``backtest`` target, in order."""
    commands, in_target = [], False
    for line in makefile.read_text().splitlines():
        if line.startswith("backtest:"):
            in_target = True
        elif in_target and line.startswith("\t"):
            program, *args = shlex.split(line.strip())
            assert program.endswith("/shopflow"), line
            commands.append(args)
        elif in_target:
            break
    return commands


def digests(settings) -> dict[str, str]:
    """sha256 of every published file, of the registry and of the warehouse (lock files,
    which only record the last holder's pid, left out)."""
    files = [p for p in settings.exports_dir.rglob("*") if p.is_file()]
    files += [settings.registry_path, settings.warehouse_path]
    return {
        str(path.relative_to(settings.home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(files)
        if path.exists() and path.suffix != ".lock"
    }


@pytest.fixture(scope="module")
def one_night(built_home, tmp_path_factory):
    """The tiny shop after its first night. The session's home is already ingested and built
    for the date; small champions stand in for the first models (quick to train); the
    night's other steps run here: scoring, validation, publishing, post-publish checks."""
    settings, run_date = copy_home(built_home, tmp_path_factory.mktemp("one_night"))
    promote_trained(settings, run_date, WEAK, reason="first models of the test night")
    results = {}
    for name, step in NIGHTLY_STEPS.items():
        if name not in ("ingest_landing", "build_warehouse"):
            results[name] = step(settings, run_date)
    return settings, run_date, results


def test_the_nightly_training_features_step_does_nothing_when_models_have_champions(one_night):
    _, _, results = one_night
    assert results["build_training_features"]["built"] is False
    assert not any(r["trained"] for r in results["ensure_models"].values())


def test_make_backtest_runs_both_backtests():
    assert make_backtest_commands() == [["backtest", "forecast"], ["backtest", "recommend"]]


def test_make_backtest_writes_nothing(one_night, monkeypatch, capsys):
    settings, _, _ = one_night
    before = digests(settings)
    assert "models/registry.duckdb" in before
    assert any(name.startswith("exports/recommendations/") for name in before)
    monkeypatch.setenv("SHOPFLOW_HOME", str(settings.home))
    for args in make_backtest_commands():
        assert main(args) == 0, args
    out = capsys.readouterr().out
    assert "baseline_mean_28" in out and "baseline_popularity_30d" in out
    assert digests(settings) == before
