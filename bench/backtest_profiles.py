"""Backtest tables per shop profile: the models against every baseline, in the same run.

    python -m bench.backtest_profiles [--profiles wholesale,marketplace,fashion] [--home DIR]

For each profile (``shopflow.generator.profiles``) a small shop is generated into its own
home, ingested and built with dbt (with the ranker's training cutoffs), then what
``shopflow backtest forecast`` and ``shopflow backtest recommend`` run is run on it, and what
the nightly bootstrap would serve (``ml.promotion.choose_first``) is read off the same
tables. The Markdown report is printed and written to ``bench/results/profiles.md``; every
figure in it is measured in this run. Sized for CI (tests/bench/test_backtest_profiles.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PROFILE_NAMES = ("wholesale", "marketplace", "fashion")
# small shops: about a minute each on two cores; marketplace customers order once, so it
# needs more of them for the same number of orders
SPECS = {
    "wholesale": dict(customers=400, products=120, days=200),
    "marketplace": dict(customers=5000, products=400, days=200),
    "fashion": dict(customers=400, products=160, days=200),
}
START = dt.date(2025, 1, 1)


def backtest_profile(profile: str, home: Path) -> dict:
    """Generate, build and backtest one profile's shop in ``home``; the tables and timings."""
    from ml.forecast.backtest import format_table as forecast_table
    from ml.promotion import choose_first
    from ml.recommend.backtest import format_table as recommend_table
    from shopflow.dbt import build_training_features, build_warehouse
    from shopflow.generator import ShopSpec, generate_shop
    from shopflow.ingest import ingest_landing
    from shopflow.jobs.backtests import backtest_forecast, backtest_recommend
    from shopflow.settings import load_settings

    settings = load_settings({"SHOPFLOW_HOME": str(home)})
    settings.ensure_dirs()
    # every ISO 4217 currency is accepted by default (shopflow.config), BRL included
    note, generated = "", profile
    started = time.perf_counter()
    shop = generate_shop(
        ShopSpec(**SPECS[profile], start=START, seed=11, profile=generated),
        settings.landing_dir,
    )
    ingest_landing(settings, shop.last_date)
    build_warehouse(settings, shop.last_date)
    build_training_features(settings, shop.last_date)
    built = time.perf_counter() - started
    started = time.perf_counter()
    forecast = backtest_forecast(settings, shop.last_date)
    recommend = backtest_recommend(settings, shop.last_date)
    return {
        "profile": profile,
        "note": note,
        "order_lines": shop.order_lines,
        "build_seconds": built,
        "backtest_seconds": time.perf_counter() - started,
        "forecast": forecast.results,
        "recommend": recommend.results,
        "forecast_table": forecast_table(forecast.results),
        "recommend_table": recommend_table(recommend),
        "forecast_serves": choose_first("demand_forecast", forecast.results),
        "recommend_serves": choose_first("recommendations", recommend.results),
    }


def report(results: list[dict]) -> str:
    """The Markdown report of :func:`backtest_profile` results."""
    out = ["# Backtests per shop profile (model vs every baseline, same run)", ""]
    for r in results:
        out += [
            f"## {r['profile']}",
            "",
            f"{r['note']} {r['order_lines']:,} order lines; generate + ingest + dbt build "
            f"{r['build_seconds']:.0f} s, both backtests {r['backtest_seconds']:.0f} s.",
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
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "profiles.md")
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
