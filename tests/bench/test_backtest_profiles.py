"""One backtest table per shop profile (model vs every baseline, same run), as CI runs it:
`make test-profiles` (`pytest -m profiles`). Each profile's shop is generated, built and
backtested; the tables must hold every baseline next to the model, and the choice of what would
serve must follow them. The run writes its report to bench/results/profiles.md and prints it
after the test summary (tests/bench/conftest.py), so CI's log shows the tables."""

from __future__ import annotations

import pytest

from bench.backtest_profiles import PROFILE_NAMES, ROOT, backtest_profile, report
from ml.forecast.baselines import BASELINES as FORECAST_BASELINES
from ml.promotion import PRIMARY, beats_baselines, best_baseline
from ml.recommend.baselines import BASELINES as RANKER_BASELINES
from tests.bench.conftest import PROFILES_REPORT

pytestmark = pytest.mark.profiles


@pytest.fixture(scope="module")
def results(tmp_path_factory, pytestconfig):
    made = [backtest_profile(p, tmp_path_factory.mktemp(p)) for p in PROFILE_NAMES]
    text = report(made)
    # the committed bench/results/profiles.md is written by `python -m bench.backtest_profiles`;
    # a test run leaves it alone and keeps its own copy in the ignored bench/.work/
    out = ROOT / ".work" / "profiles.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    pytestconfig.stash[PROFILES_REPORT] = text
    return made


def test_every_profile_has_the_model_and_every_baseline_in_one_table(results):
    for r in results:
        assert {"model", *FORECAST_BASELINES} <= set(r["forecast"]), r["profile"]
        assert {"model", *RANKER_BASELINES} <= set(r["recommend"]), r["profile"]
    text = report(results)
    for name in PROFILE_NAMES:
        assert f"## {name}" in text


@pytest.mark.parametrize("task", ["forecast", "recommend"])
def test_what_would_serve_follows_the_table(results, task):
    model_name = "demand_forecast" if task == "forecast" else "recommendations"
    for r in results:
        serves, _ = r[f"{task}_serves"]
        wins, _ = beats_baselines(model_name, r[task])
        metric, _ = PRIMARY[model_name]
        assert serves == ("model" if wins else best_baseline(model_name, r[task])), (
            r["profile"],
            r[task]["model"].get(metric),
        )
