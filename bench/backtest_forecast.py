"""Demand forecast backtest on the real year (Online Retail II 2009-2010) against its targets.

    python -m bench.backtest_forecast [--home DIR] [--origins N] [--run-date D] [--register]

Builds a warehouse from ../shared/data/online_retail_ii into ``--home`` (once; reused when it
already has features), then runs what ``shopflow backtest forecast`` runs: a rolling-origin
backtest over the last ``--origins`` 28-day windows before ``--run-date`` (default the year's
last day, 2010-12-09; an earlier date gives development windows that a change can be checked
on before it is judged on the last ones), model and baselines in one table. Nothing is
registered unless ``--register`` is given (then the refit is registered as a challenger in
that home, never promoted). It also times a full-year training and the nightly scoring of
every active product. Every figure printed is measured in this run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = (
    REPO_ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_ii_2009_2010.parquet"
)
RUN_DATE = dt.date(2010, 12, 9)


def build_home(settings) -> None:
    """Load, ingest and dbt-build the real year unless the home already has its features."""
    from shopflow.adapters import load_source
    from shopflow.dbt import build_warehouse
    from shopflow.ingest import ingest_landing

    if settings.warehouse_path.exists():
        return
    settings.ensure_dirs()
    load_source("online-retail-ii", DATA, settings.landing_dir)
    ingest_landing(settings, RUN_DATE)
    build_warehouse(settings, RUN_DATE)


def main(argv: list[str] | None = None) -> int:
    from ml.forecast.backtest import format_table
    from ml.forecast.model import DemandForecaster, ForecastParams, build_training_frame
    from ml.training import train_forecaster
    from shopflow.jobs.backtests import backtest_forecast
    from shopflow.jobs.inputs import read_training_forecast_inputs
    from shopflow.jobs.retrain import register_trained
    from shopflow.registry import Registry
    from shopflow.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/shopflow-forecast-bench"))
    parser.add_argument("--origins", type=int, default=2)
    parser.add_argument("--run-date", type=dt.date.fromisoformat, default=RUN_DATE)
    parser.add_argument(
        "--register",
        action="store_true",
        help="register the refit as a challenger in --home (default: write nothing)",
    )
    args = parser.parse_args(argv)
    run_date = args.run_date
    if run_date > RUN_DATE:
        parser.error(f"--run-date must be on or before {RUN_DATE}, the data's last day")
    settings = load_settings({"SHOPFLOW_HOME": str(args.home)})
    build_home(settings)

    started = time.perf_counter()
    feat = read_training_forecast_inputs(settings, run_date).feat
    read_seconds = time.perf_counter() - started
    params = ForecastParams()
    started, cpu = time.perf_counter(), time.process_time()
    model = DemandForecaster.train(build_training_frame(feat, run_date, params), params)
    train_wall, train_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    forecast = model.forecast(feat, run_date)
    score_seconds = time.perf_counter() - started

    result = backtest_forecast(settings, run_date, args.origins)
    print(f"origins {[o.isoformat() for o in result.origins]}")
    if args.register:
        trained = train_forecaster(
            read_training_forecast_inputs(settings, run_date), run_date, backtest=result
        )
        version = register_trained(Registry(settings), trained, created_by="bench backtest")
        print(f"registered {version.version} as {version.status}")
    print(format_table(result.results))
    best = min(
        result.results[name]["weekly_wape"]
        for name in result.results
        if name.startswith("baseline_")
    )
    model_scores = result.results["model"]
    print(
        f"\nweekly WAPE / best baseline: {model_scores['weekly_wape'] / best:.3f} (target <= 0.90)"
        f"\npinball / 28-day mean's: "
        f"{model_scores['pinball'] / result.results['baseline_mean_28']['pinball']:.3f}"
        f" (target <= 0.90)\ncoverage p10-p90: {model_scores['coverage_p10_p90']:.3f}"
        f" (target 0.70-0.90; below p10 {model_scores['below_p10']:.3f}, above p90"
        f" {model_scores['above_p90']:.3f})"
        f"\nfull-year training: {train_wall:.1f} s wall, {train_cpu:.1f} s CPU (target < 120 s)"
        f"\nnightly scoring of {forecast['product_id'].nunique()} products: "
        f"{read_seconds + score_seconds:.1f} s (read {read_seconds:.1f} s + predict "
        f"{score_seconds:.1f} s; target < 20 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
