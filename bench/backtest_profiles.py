"""Backtest tables per shop profile: the models against every baseline, in the same run.

    python -m bench.backtest_profiles [--profiles wholesale,marketplace,fashion] [--home DIR]

For each profile (``shopflow.generator.profiles``) a small shop is generated into its own
home, ingested and built with dbt (with the ranker's training cutoffs), then what
``shopflow backtest forecast`` and ``shopflow backtest recommend`` run is run on it (with one
XGBoost thread, :data:`XGBOOST_THREADS`), and what
the nightly bootstrap would serve (``ml.promotion.choose_first``) is read off the same
tables. The Markdown report is printed and written to ``bench/results/profiles.md``; every
figure in it is measured in this run, with the seconds of each stage. Sized for CI
(``make test-profiles``: tests/bench/test_backtest_profiles.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPORT_PATH = ROOT / "results" / "profiles.md"
PROFILE_NAMES = ("wholesale", "marketplace", "fashion")
# Small shops, sized for CI: the three together take a few minutes on two cores (with one
# XGBoost thread and the training cutoffs in one dbt run, below). Marketplace customers order
# once, so it needs many customers for its test month to hold several hundred buyers (ranker
# metrics, not noise), and a larger catalogue for its long tail of slow products.
SPECS = {
    "wholesale": dict(customers=400, products=120, days=200),
    "marketplace": dict(customers=5000, products=400, days=200),
    "fashion": dict(customers=400, products=160, days=200),
}
START = dt.date(2025, 1, 1)
# One XGBoost thread for these small shops: a boosting round on ~100k rows is too short for a
# second thread to pay off, and when other work shares the two cores, two OpenMP threads
# spin-waiting on each other made the forecaster's training 5 to 15 times slower (measured at
# load average 18). The models are otherwise the nightly's (ForecastParams, RankerParams).
XGBOOST_THREADS = 1
STAGES = (
    "generate",
    "ingest",
    "dbt_build",
    "training_features",
    "backtest_forecast",
    "backtest_recommend",
)


def backtest_profile(profile: str, home: Path) -> dict:
    """Generate, build and backtest one profile's shop in ``home``; the tables and the seconds
    of each stage (:data:`STAGES`)."""
    from ml.forecast.backtest import format_table as forecast_table
    from ml.forecast.model import ForecastParams
    from ml.promotion import choose_first
    from ml.recommend.backtest import format_table as recommend_table
    from ml.recommend.params import RankerParams
    from shopflow.dbt import build_training_features, build_warehouse
    from shopflow.generator import ShopSpec, generate_shop
    from shopflow.generator.profiles import profile_of
    from shopflow.ingest import ingest_landing
    from shopflow.jobs.backtests import backtest_forecast, backtest_recommend
    from shopflow.settings import load_settings

    settings = load_settings({"SHOPFLOW_HOME": str(home)})
    settings.ensure_dirs()
    seconds: dict[str, float] = {}
    load_before = os.getloadavg()[0]

    def timed(stage: str, work):
        started = time.perf_counter()
        value = work()
        seconds[stage] = time.perf_counter() - started
        return value

    spec = ShopSpec(**SPECS[profile], start=START, seed=11, profile=profile)
    shop = timed("generate", lambda: generate_shop(spec, settings.landing_dir))
    timed("ingest", lambda: ingest_landing(settings, shop.last_date))
    timed("dbt_build", lambda: build_warehouse(settings, shop.last_date))
    # all training cutoffs in one dbt invocation: on these shops dbt's start-up costs more than
    # a cutoff's queries (one per invocation is for the memory of large shops)
    timed(
        "training_features",
        lambda: build_training_features(settings, shop.last_date, cutoffs_per_run=None),
    )
    forecast_params = ForecastParams(
        horizon_days=settings.forecast_horizon_days, nthread=XGBOOST_THREADS
    )
    forecast = timed(
        "backtest_forecast",
        lambda: backtest_forecast(settings, shop.last_date, params=forecast_params),
    )
    recommend = timed(
        "backtest_recommend",
        lambda: backtest_recommend(settings, shop.last_date, RankerParams(nthread=XGBOOST_THREADS)),
    )
    return {
        "profile": profile,
        "spec": SPECS[profile],
        "currency": profile_of(profile).currency,
        "order_lines": shop.order_lines,
        "seconds": seconds,
        "build_seconds": sum(seconds[s] for s in STAGES[:4]),
        "backtest_seconds": sum(seconds[s] for s in STAGES[4:]),
        "load_average": (load_before, os.getloadavg()[0]),
        "forecast": forecast.results,
        "recommend": recommend.results,
        "recommend_facts": recommend.facts,
        "forecast_table": forecast_table(forecast.results),
        "recommend_table": recommend_table(recommend),
        "forecast_serves": choose_first("demand_forecast", forecast.results),
        "recommend_serves": choose_first("recommendations", recommend.results),
    }


def summary(results: list[dict]) -> list[str]:
    """One Markdown row per profile: each model's primary metric against the best baseline's
    on the same holdout, and what the bootstrap would serve."""
    from ml.promotion import PRIMARY, best_baseline

    rows = [
        "| profile | forecaster weekly WAPE (best baseline) | serves | "
        "ranker NDCG@10 (best baseline) | serves |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cells = []
        for model_name, task in (("demand_forecast", "forecast"), ("recommendations", "recommend")):
            metric, _ = PRIMARY[model_name]
            best = best_baseline(model_name, r[task])
            model_value = r[task]["model"][metric]
            best_value = r[task][best][metric]
            cells += [f"{model_value:.4f} ({best_value:.4f} {best})", r[f"{task}_serves"][0]]
        rows.append(f"| {r['profile']} | " + " | ".join(cells) + " |")
    return rows


def report(results: list[dict]) -> str:
    """The Markdown report of :func:`backtest_profile` results."""
    out = [
        "# Backtests per shop profile (model vs every baseline, same run)",
        "",
        "`python -m bench.backtest_profiles` (`make test-profiles` runs the same as a test",
        f"and prints it), on a {os.cpu_count()}-core machine; every figure is measured in that",
        "run. Seconds per stage, and the load average (1 min) before and after each profile:",
        "other work on the machine slows every stage.",
        "",
        "| profile | shop | order lines | " + " | ".join(STAGES) + " | total s | load |",
        "|---|---|---:|" + "---:|" * len(STAGES) + "---:|---|",
    ]
    for r in results:
        spec = r["spec"]
        shop = f"{spec['customers']:,} customers, {spec['products']} products, {spec['days']} days"
        cells = " | ".join(f"{r['seconds'][s]:.0f}" for s in STAGES)
        total = sum(r["seconds"].values())
        load = f"{r['load_average'][0]:.1f} → {r['load_average'][1]:.1f}"
        out.append(
            f"| {r['profile']} | {shop} ({r['currency']}) | {r['order_lines']:,} | {cells} "
            f"| {total:.0f} | {load} |"
        )
    everything = sum(sum(r["seconds"].values()) for r in results)
    out += ["", f"All profiles: {everything:.0f} s.", "", *summary(results), ""]
    for r in results:
        out += [
            f"## {r['profile']}",
            "",
            f"Generated in {r['currency']}; {r['order_lines']:,} order lines; generate + ingest + "
            f"dbt build {r['build_seconds']:.0f} s, both backtests {r['backtest_seconds']:.0f} s.",
            "",
            f"Forecaster — what would serve: {r['forecast_serves'][0]} ({r['forecast_serves'][1]})",
            "",
            "```",
            r["forecast_table"],
            "```",
            "",
            f"Ranker — what would serve: {r['recommend_serves'][0]} ({r['recommend_serves'][1]})",
            "",
            "```",
            r["recommend_table"],
            "```",
            "",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default=",".join(PROFILE_NAMES))
    parser.add_argument("--home", type=Path, default=None, help="parent of the homes (temp)")
    parser.add_argument("--out", type=Path, default=REPORT_PATH)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        parent = args.home or Path(tmp)
        for profile in args.profiles.split(","):
            results.append(backtest_profile(profile, parent / profile))
            print(report(results[-1:]), flush=True)
    text = report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
