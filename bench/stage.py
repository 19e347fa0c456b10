"""One benchmark stage in its own process, so its peak memory is its own.

    python -m bench.stage STAGE --size S --home DIR --date YYYY-MM-DD

Prints one JSON line: {"stage", "seconds", "rows", "peak_rss_mb", "detail"}.
Peak RSS is the larger of this process's and its children's (dbt runs as a child).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from pathlib import Path

from bench.sizes import SIZES
from shopflow.dbt import project_vars
from shopflow.settings import Settings, load_settings


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def _count(settings, sql: str) -> int:
    from shopflow.warehouse import connect

    with connect(settings, read_only=True) as con:
        return int(con.execute(sql).fetchone()[0])


# the raw tables bench/limit.sql reads, as views of the warehouse's
LIMIT_RAW_TABLES = ("order_lines", "products", "customers")


def limit_script(run_date: dt.date, variables: dict) -> str:
    """bench/limit.sql for ``run_date`` with the dbt vars it uses filled in."""
    script = Path(__file__).with_name("limit.sql").read_text()
    values = {
        "$RUN_DATE": run_date.isoformat(),
        "$COOCCURRENCE_NEIGHBOURS": str(int(variables["cooccurrence_neighbours"])),
        "$COOCCURRENCE_MAX_ORDER_PRODUCTS": str(int(variables["cooccurrence_max_order_products"])),
    }
    for placeholder, value in values.items():
        script = script.replace(placeholder, value)
    return script


def run_limit_sql(settings: Settings, run_date: dt.date, target: Path, variables: dict) -> int:
    """Run bench/limit.sql in one connection to a new DuckDB file ``target``, reading the
    warehouse's raw tables (attached read-only: the script never writes the warehouse).
    Returns the rows of lim.fct_order_lines."""
    import duckdb

    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        con.execute(f"set threads = {settings.duckdb_threads}")
        con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        con.execute("create schema if not exists raw")
        for table in LIMIT_RAW_TABLES:
            con.execute(f"create or replace view raw.{table} as select * from wh.raw.{table}")
        con.execute(limit_script(run_date, variables))
        return int(con.execute("select count(*) from lim.fct_order_lines").fetchone()[0])
    finally:
        con.close()


def dbt_node_seconds(target_dir: Path) -> dict[str, float]:
    """Seconds per node of the last dbt invocation (run_results.json), slowest first."""
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    timed = {r["unique_id"]: round(float(r["execution_time"]), 2) for r in results}
    return dict(sorted(timed.items(), key=lambda item: -item[1]))


def run_stage(stage: str, size: str, home: Path, run_date: dt.date) -> dict:
    settings = load_settings({"SHOPFLOW_HOME": str(home)})
    settings.ensure_dirs()
    detail: dict = {}
    started = time.perf_counter()
    if stage == "generate":
        from shopflow.generator import generate_shop

        shop = generate_shop(SIZES[size], settings.landing_dir)
        rows = shop.order_lines
        detail = {"orders": shop.orders, "customers": shop.customers, "products": shop.products}
    elif stage == "ingest_history":
        from shopflow.ingest import ingest_landing

        result = ingest_landing(settings, run_date)
        rows = sum(result.rows.values())
        detail = result.as_dict()
    elif stage == "dbt_full_build":
        from shopflow.dbt import build_warehouse

        detail = build_warehouse(settings, run_date, full_refresh=True).summary()
        rows = _count(
            settings,
            f"select count(*) from marts.fct_order_lines where ordered_date <= '{run_date}'",
        )
    elif stage == "dbt_plain_build":
        import subprocess

        from shopflow.dbt import dbt_executable

        env = {**os.environ, **settings.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        command = [
            dbt_executable(), "build",
            "--project-dir", str(settings.dbt_project_dir),
            "--profiles-dir", str(settings.dbt_project_dir),
            "--target-path", str(settings.home / "dbt" / "plain-target"),
            "--vars", json.dumps({"run_date": run_date.isoformat(), **settings.dbt_vars()}),
        ]  # fmt: skip
        subprocess.run(command, env=env, check=True, capture_output=True)
        rows = 0
    elif stage in ("train_forecast", "train_recommend"):
        from shopflow.jobs.retrain import train_model
        from shopflow.registry import Registry

        name = "demand_forecast" if stage == "train_forecast" else "recommendations"
        if name == "recommendations":
            # the ranker trains at cutoffs the nightly build leaves out: the build task of
            # shopflow_nightly / shopflow_retrain adds them, inside this stage's time as before
            from shopflow.dbt import build_training_features

            build_training_features(settings, run_date)
        result = train_model(settings, name, run_date, created_by="bench")
        Registry(settings).promote(name, result.version.version, actor="bench", reason="bench")
        rows = int(result.version.data_fingerprint.get("rows", 0))
        detail = {"version": result.version.version}
    elif stage == "nightly":
        from shopflow.jobs.steps import NIGHTLY_STEPS

        steps = {}
        rows = 0
        for name, step in NIGHTLY_STEPS.items():
            if name == "ensure_models":
                continue
            t0 = time.perf_counter()
            out = step(settings, run_date)
            steps[name] = round(time.perf_counter() - t0, 2)
            if name == "build_warehouse":
                # dbt is this process's only child: its peak is the transform stage's memory
                children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                detail["transform_peak_rss_mb"] = round(children / 1024.0, 1)
                detail["dbt_nodes"] = dbt_node_seconds(settings.home / "dbt" / "target")
            if name == "ingest_landing":
                rows = sum(out.get("rows_loaded", {}).values())
        detail["steps"] = steps
    elif stage == "live_evaluation":
        detail = live_evaluation(settings, run_date)
        rows = detail.pop("rows")
    elif stage == "limit_sql":
        variables = project_vars(settings)
        rows = run_limit_sql(settings, run_date, settings.home / "limit.duckdb", variables)
    elif stage == "pandas_marts":
        from bench.pandas_marts import compute_marts

        variables = project_vars(settings)
        out_dir = settings.home / "pandas_marts"
        detail = compute_marts(settings.landing_dir, out_dir, run_date, variables)
        rows = detail["fct_order_lines"]
    else:
        raise SystemExit(f"unknown stage {stage}")
    seconds = time.perf_counter() - started
    return {
        "stage": stage,
        "seconds": round(seconds, 3),
        "rows": rows,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "detail": detail,
    }


# run dates of predictions in place before the measured night: more than the 28-day window,
# so the night evaluates forecasts of every horizon week and a complete recommendation window
LIVE_HISTORY_DAYS = 35
FEATURE_BATCH = 6


def live_evaluation(settings: Settings, run_date: dt.date) -> dict:
    """What live accuracy adds to one night, in steady state: on a home built as of
    ``run_date`` (after the ``nightly`` stage), predictions and baselines for the 35 run dates
    before it (random but valid, every active product and customer), then the night's
    additions, each timed: ``record_baselines``, the two live dbt models (incremental: the
    night's evaluation on top of yesterday's) and ``check_live_accuracy``."""
    from shopflow.dbt import run_dbt
    from shopflow.jobs.feedback import check_live_accuracy, record_baselines
    from tests.feedback.helpers import LIVE_MODELS, write_fake_predictions

    previous = run_date - dt.timedelta(days=1)
    # the features of every cutoff, a few more cutoffs per dbt run (the models compute only
    # the missing ones and keep those asked for): 36 cutoffs at once spilled past 50 GB at M
    for last in range(FEATURE_BATCH - 1, LIVE_HISTORY_DAYS + FEATURE_BATCH, FEATURE_BATCH):
        run_dbt(
            settings,
            ["run", "--select", "feat_customer_product", "feat_product_popularity"],
            run_date,
            extra_vars={
                "feature_cutoff_offsets_days": list(range(min(last, LIVE_HISTORY_DAYS) + 1))
            },
        )
    for back in range(LIVE_HISTORY_DAYS, 0, -1):
        write_fake_predictions(settings, run_date - dt.timedelta(days=back), seed=back)
    run_dbt(settings, ["run", "--select", *LIVE_MODELS], previous)  # yesterday's evaluation
    seconds = {}
    t0 = time.perf_counter()
    record_baselines(settings, run_date)
    seconds["record_baselines"] = time.perf_counter() - t0
    target = settings.home / "dbt" / "live-target"
    t0 = time.perf_counter()
    run_dbt(settings, ["run", "--select", *LIVE_MODELS], run_date, target_dir=target)
    seconds["live_models_own_dbt_run"] = time.perf_counter() - t0
    # inside the nightly build the models cost their node time only (no dbt start-up)
    seconds["live_models_nodes"] = sum(dbt_node_seconds(target).values())
    t0 = time.perf_counter()
    check_live_accuracy(settings, run_date)
    seconds["check_live_accuracy"] = time.perf_counter() - t0
    added = (
        seconds["record_baselines"] + seconds["live_models_nodes"] + seconds["check_live_accuracy"]
    )
    rows = _count(settings, "select count(*) from live.live_forecast_accuracy")
    rows += _count(settings, "select count(*) from live.live_recommendation_outcomes")
    return {
        "rows": rows,
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
        "added_to_night_seconds": round(added, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage")
    parser.add_argument("--size", default="S")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--date", required=True, type=dt.date.fromisoformat)
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        help="cap the process's data segment (RLIMIT_DATA): past it allocations fail with "
        "MemoryError instead of the machine running out of memory",
    )
    args = parser.parse_args()
    if args.memory_cap_gb:
        cap = int(args.memory_cap_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    print(json.dumps(run_stage(args.stage, args.size, args.home, args.date), default=str))


if __name__ == "__main__":
    main()
