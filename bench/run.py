"""Shopflow benchmark: how long is the night, how much memory, how does it grow.

    python -m bench.run --size S|M|L [--airflow]     (make bench SIZE=M)

Every stage runs in its own process (bench.stage) on a generated shop (deterministic by
seed) and reports wall time, peak RSS and rows per second. Two comparisons run on the same
data in the same run: "the limit" (bench/limit.sql: the marts in one hand-written DuckDB
script) and "the usual alternative" (bench/pandas_marts.py). The Markdown report is printed
and written to bench/results/<size>.md; no figure in it is typed in by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from bench.sizes import SIZES
from shopflow.deploy.services import free_port_block

ROOT = Path(__file__).resolve().parent
TARGETS = {
    "nightly_seconds": 90.0,
    "transform_vs_limit": 1.5,
    "pandas_speedup": 2.0,
    "pandas_memory_ratio": 0.5,
    "rebuild_seconds": 15 * 60.0,
    "rebuild_rss_mb": 6 * 1024.0,
    "dbt_visibility": 1.15,
    # the nightly through the scheduler against the same steps in one process
    "scheduler_overhead": 1.15,
    # live accuracy (baselines, live models, the rollback check) against the rest of the night
    "live_share": 0.10,
}


ALTERNATIVE_MEMORY_CAP_GB = 16.0


def run_stage(
    stage: str,
    size: str,
    home: Path,
    day: dt.date,
    *,
    memory_cap_gb: float | None = None,
    checkout: Path | None = None,
    python: Path | None = None,
) -> dict:
    """Run one stage in its own process. With ``memory_cap_gb`` the stage is one of the
    alternatives the platform is compared with: it runs under that memory cap (so it fails
    with MemoryError instead of taking the machine down) and a failure is reported, not
    raised. ``checkout`` and ``python`` run another checkout's code with its interpreter
    (default: this one's)."""
    command = [
        str(python or sys.executable),
        "-m",
        "bench.stage",
        stage,
        "--size",
        size,
        "--home",
        str(home),
        "--date",
        day.isoformat(),
    ]
    if memory_cap_gb:
        command += ["--memory-cap-gb", str(memory_cap_gb)]
    started = time.perf_counter()
    cwd = checkout or ROOT.parent
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0 and memory_cap_gb:
        reason = (done.stderr.strip().splitlines() or ["killed"])[-1][:200]
        print(f"  {stage:<16} did not complete: {reason}", flush=True)
        return {
            "stage": stage,
            "seconds": round(time.perf_counter() - started, 3),
            "rows": 0,
            "peak_rss_mb": None,
            "failed": reason,
            "detail": {},
        }
    if done.returncode != 0:
        raise RuntimeError(f"{cwd}: stage {stage} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {stage:<16} {result['seconds']:>9.2f} s  {result['peak_rss_mb']:>8.0f} MB", flush=True
    )
    return result


def run_airflow_nightly(home: Path, day: dt.date) -> dict:
    """The nightly for ``day`` through the scheduler of a local deployment (`shopflow run`),
    services started before the clock starts and stopped after; task spans and the build
    task's `dbt build` seconds are read through the REST API."""
    from shopflow.deploy.api import AirflowApi
    from shopflow.deploy.runs import run_id_for, task_instances, task_log, task_seconds
    from shopflow.settings import load_settings

    env = {
        **os.environ,
        "SHOPFLOW_HOME": str(home),
        "SHOPFLOW_AIRFLOW_PORT": str(free_port_block()),
        # a generated shop's history: no scheduled night for today's date to queue behind
        "SHOPFLOW_SCHEDULE": "off",
    }
    shopflow = str(Path(sys.executable).with_name("shopflow"))
    started = time.perf_counter()
    up = subprocess.run([shopflow, "up"], env=env, capture_output=True, text=True, check=False)
    up_seconds = time.perf_counter() - started
    try:
        if up.returncode != 0:
            raise RuntimeError(f"shopflow up failed:\n{up.stderr[-4000:]}")
        started = time.perf_counter()
        done = subprocess.run(
            [shopflow, "run", "--date", day.isoformat()],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"airflow nightly failed:\n{done.stderr[-4000:]}")
        api = AirflowApi(load_settings(env))
        run_id = run_id_for("shopflow_nightly", day)
        tis = task_instances(api, "shopflow_nightly", run_id)
        build = next(ti for ti in tis if ti["task_id"] == "build_warehouse")
        build_log = "\n".join(
            str(line.get("event")) for line in task_log(api, "shopflow_nightly", run_id, build)
        )
    finally:
        subprocess.run([shopflow, "down"], env=env, capture_output=True, check=False)
    print(f"  {'nightly_airflow':<16} {seconds:>9.2f} s  (services up in {up_seconds:.1f} s)")
    return {
        "stage": "nightly_airflow",
        "seconds": round(seconds, 3),
        "rows": 0,
        "peak_rss_mb": None,
        "detail": {
            "tasks": task_seconds(tis),
            "dbt_build_seconds": dbt_build_seconds(build_log, day),
            "up_seconds": round(up_seconds, 1),
        },
    }


def dbt_build_seconds(log: str, day: dt.date) -> float | None:
    """Wall seconds of the `dbt build` process the nightly run's build task ran (as logged by
    shopflow.dbt.run_dbt): the plain build that per-model visibility is compared with."""
    pattern = re.compile(rf"dbt build for {day.isoformat()} finished in ([0-9.]+) s")
    found = [float(m.group(1)) for m in pattern.finditer(log)]
    return found[-1] if found else None


def machine() -> dict:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM",
        "os": platform.platform(),
        "python": platform.python_version(),
        # other work on the machine slows every stage: the report says how busy it was
        "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "versions": ", ".join(
            f"{p} {version(p)}"
            for p in (
                "duckdb",
                "dbt-core",
                "dbt-duckdb",
                "apache-airflow",
                "great_expectations",
                "xgboost",
                "pandas",
            )
        ),
    }


def _fmt(value, digits=2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def alternative_checks(transform: float, transform_rss, limit: dict, pandas: dict) -> list:
    """The comparisons with the limit script and the pandas alternative; an alternative that
    did not complete (e.g. ran out of its memory cap) is reported as such."""
    checks = []
    if limit.get("failed"):
        checks.append(("transform stage / limit script", f"limit: {limit['failed']}", "", None))
    else:
        ratio = transform / limit["seconds"]
        checks.append(
            (
                "transform stage / limit script",
                f"{ratio:.2f}x ({transform:.1f} s vs {limit['seconds']:.1f} s)",
                f"<= {TARGETS['transform_vs_limit']}x",
                ratio <= TARGETS["transform_vs_limit"],
            )
        )
    if pandas.get("failed"):
        note = f"pandas did not complete: {pandas['failed']}"
        checks.append(("pandas time / transform stage", note, "", None))
        checks.append(("transform peak RSS / pandas peak RSS", note, "", None))
        return checks
    speedup = pandas["seconds"] / transform
    checks.append(
        (
            "pandas time / transform stage",
            f"{speedup:.2f}x ({pandas['seconds']:.1f} s)",
            f">= {TARGETS['pandas_speedup']}x",
            speedup >= TARGETS["pandas_speedup"],
        )
    )
    memory = transform_rss / pandas["peak_rss_mb"] if transform_rss else None
    checks.append(
        (
            "transform peak RSS / pandas peak RSS",
            f"{memory:.2f} ({transform_rss:.0f} MB vs {pandas['peak_rss_mb']:.0f} MB)"
            if memory
            else "—",
            f"<= {TARGETS['pandas_memory_ratio']}",
            bool(memory) and memory <= TARGETS["pandas_memory_ratio"],
        )
    )
    return checks


def growth_table(size: str, results: dict[str, dict]) -> list[str]:
    """How each stage grows from the next smaller size's committed results (L vs M)."""
    smaller = {"L": "M", "M": "S"}.get(size)
    path = ROOT / "results" / f"{smaller}.json"
    if smaller is None or not path.exists():
        return []
    before = json.loads(path.read_text())
    lines = [
        f"Growth from size {smaller} (bench/results/{smaller}.json) to {size}:",
        "",
        f"| stage | {smaller} s | {size} s | x | {smaller} MB | {size} MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        b = before.get(name)
        if not b or r.get("failed") or b.get("failed"):
            continue
        ratio = r["seconds"] / b["seconds"] if b["seconds"] else None
        lines.append(
            f"| {name} | {_fmt(b['seconds'])} | {_fmt(r['seconds'])} | {_fmt(ratio, 1)} | "
            f"{_fmt(b['peak_rss_mb'], 0)} | {_fmt(r['peak_rss_mb'], 0)} |"
        )
    return [*lines, ""]


def report(size: str, results: dict[str, dict], info: dict) -> str:
    spec = SIZES[size]
    lines = [
        f"# Shopflow benchmark, size {size}",
        "",
        f"Shop: {spec.customers:,} customers, {spec.products:,} products, {spec.days} days "
        f"(seed {spec.seed}); {results['generate']['rows']:,} order lines.",
        f"Machine: {info['machine']}; {info['os']}; Python {info['python']}; "
        f"load average at the end of the run (1, 5, 15 min): {info['load']}.",
        f"Versions: {info['versions']}.",
        f"Run at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `python -m bench.run "
        f"--size {size}`.",
        "",
        "| stage | wall s | rows | rows/s | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        if r.get("failed"):
            lines.append(f"| {name} | did not complete: {r['failed']} | | | |")
            continue
        rate = r["rows"] / r["seconds"] if r["rows"] and r["seconds"] else None
        lines.append(
            f"| {name} | {_fmt(r['seconds'])} | {r['rows']:,} | {_fmt(rate, 0)} | "
            f"{_fmt(r['peak_rss_mb'], 0)} |"
        )
    nightly = results["nightly"]
    steps = nightly["detail"]["steps"]
    lines += [
        "",
        "Nightly incremental run, one new date, by step (seconds):",
        "",
        "| " + " | ".join(steps) + " |",
        "|" + " ---: |" * len(steps),
        "| " + " | ".join(_fmt(v) for v in steps.values()) + " |",
        "",
    ]
    transform = steps["build_warehouse"]
    limit = results["limit_sql"]
    pandas = results["pandas_marts"]
    transform_rss = nightly["detail"].get("transform_peak_rss_mb")
    rebuild = sum(
        results[s]["seconds"]
        for s in ("ingest_history", "dbt_full_build", "train_forecast", "train_recommend")
    )
    rebuild_rss = max(
        results[s]["peak_rss_mb"]
        for s in ("ingest_history", "dbt_full_build", "train_forecast", "train_recommend")
    )
    checks = [
        (
            "nightly end to end (in-process steps)",
            f"{nightly['seconds']:.1f} s",
            f"< {TARGETS['nightly_seconds']:.0f} s",
            nightly["seconds"] < TARGETS["nightly_seconds"],
        ),
        (
            "full rebuild + training both models",
            f"{rebuild:.1f} s",
            f"< {TARGETS['rebuild_seconds']:.0f} s",
            rebuild < TARGETS["rebuild_seconds"],
        ),
        (
            "full rebuild peak RSS",
            f"{rebuild_rss:.0f} MB",
            f"< {TARGETS['rebuild_rss_mb']:.0f} MB",
            rebuild_rss < TARGETS["rebuild_rss_mb"],
        ),
    ]
    checks[1:1] = alternative_checks(transform, transform_rss, limit, pandas)
    if "live_evaluation" in results and not results["live_evaluation"].get("failed"):
        added = results["live_evaluation"]["detail"]["added_to_night_seconds"]
        # the night without its live-accuracy steps (nothing to evaluate yet on the bench's
        # fresh home: what they add in steady state is measured by the live_evaluation stage)
        rest = nightly["seconds"] - sum(
            steps.get(name, 0.0) for name in ("record_baselines", "check_live_accuracy")
        )
        checks.append(
            (
                "live accuracy added to the night (35 run dates of outputs in place)",
                f"{added:.2f} s, {added / rest:.1%} of the rest of the night ({rest:.1f} s)",
                f"<= {TARGETS['live_share']:.0%}",
                added / rest <= TARGETS["live_share"],
            )
        )
    if "nightly_airflow" in results:
        seconds = results["nightly_airflow"]["seconds"]
        # the same steps, one run: through the scheduler (task processes, polling, pools)
        # against calling them in one process
        overhead = seconds / nightly["seconds"]
        checks.insert(
            1,
            (
                "nightly through the scheduler (`shopflow run`) / the same steps in process",
                f"{seconds:.1f} s, {overhead:.2f}x ({nightly['seconds']:.1f} s in process; "
                f"services started beforehand in "
                f"{results['nightly_airflow']['detail'].get('up_seconds', 0):.0f} s)",
                f"< {TARGETS['nightly_seconds']:.0f} s and <= {TARGETS['scheduler_overhead']:.2f}x",
                seconds < TARGETS["nightly_seconds"] and overhead <= TARGETS["scheduler_overhead"],
            ),
        )
        tasks = results["nightly_airflow"]["detail"]["tasks"]
        plain = results["nightly_airflow"]["detail"].get("dbt_build_seconds")
        if "build_warehouse" in tasks and "dbt_model" in tasks and plain:
            # the same build: the build task and the per-model tasks vs the `dbt build`
            # process that task ran (one plain invocation of the same project, same data)
            watched = tasks["build_warehouse"] + tasks["dbt_model"]
            checks.insert(
                2,
                (
                    "dbt in Airflow (build task + one task per model) / its plain `dbt build`",
                    f"{watched / plain:.2f}x ({watched:.1f} s vs {plain:.1f} s)",
                    f"<= {TARGETS['dbt_visibility']}x",
                    watched / plain <= TARGETS["dbt_visibility"],
                ),
            )
    lines += growth_table(size, results)
    lines += ["| comparison | measured | target (size M) | met |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {a} | {b} | {c} | {'—' if d is None else 'yes' if d else 'no'} |"
        for a, b, c, d in checks
    ]
    lines += [
        "",
        "Transform stage = the nightly `dbt build` (incremental models + tests) for one "
        "new date. Limit = bench/limit.sql computing every table of that build (marts and "
        "features at the scoring cutoff) in full, in one DuckDB connection. Pandas = "
        "bench/pandas_marts.py computing the same tables from the landing Parquet files "
        "(tests/bench/test_alternatives.py checks both against the dbt tables).",
        "",
    ]
    nodes = nightly["detail"].get("dbt_nodes") or {}
    if nodes:
        lines += [
            "Slowest nodes of the nightly `dbt build` (seconds; dbt runs up to 4 at once, one "
            "at a time on a shop above `shopflow.dbt.LARGE_SHOP_ORDER_LINES` order lines):",
            "",
            "| node | seconds |",
            "| --- | ---: |",
        ]
        slowest = list(nodes.items())[:10]
        lines += [f"| {name.split('.', 1)[1]} | {sec:.2f} |" for name, sec in slowest]
        models = sum(v for k, v in nodes.items() if k.startswith("model."))
        tests = sum(v for k, v in nodes.items() if not k.startswith("model."))
        lines += [
            "",
            f"All {len(nodes)} nodes: models {models:.1f} s, tests {tests:.1f} s (summed over "
            "threads).",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="S", choices=sorted(SIZES))
    parser.add_argument("--home", type=Path, help="working folder (default bench/.work/<size>)")
    parser.add_argument(
        "--airflow",
        action="store_true",
        help="also run the last date through Airflow (`shopflow run`)",
    )
    args = parser.parse_args()
    spec = SIZES[args.size]
    home = args.home or ROOT / ".work" / args.size
    shutil.rmtree(home, ignore_errors=True)
    end = spec.end
    history, nightly = end - dt.timedelta(days=2), end - dt.timedelta(days=1)
    print(f"Shopflow benchmark size {args.size} in {home}", flush=True)
    results = {}
    results["generate"] = run_stage("generate", args.size, home, end)
    results["ingest_history"] = run_stage("ingest_history", args.size, home, history)
    results["dbt_full_build"] = run_stage("dbt_full_build", args.size, home, history)
    results["train_forecast"] = run_stage("train_forecast", args.size, home, history)
    results["train_recommend"] = run_stage("train_recommend", args.size, home, history)
    results["nightly"] = run_stage("nightly", args.size, home, nightly)
    if args.airflow:
        results["nightly_airflow"] = run_airflow_nightly(home, end)
        # the same build again (no new data since that run) as one plain dbt invocation
        results["dbt_plain_build"] = run_stage("dbt_plain_build", args.size, home, end)
    # the alternatives run under a memory cap: on a large shop pandas may not fit, which is a
    # result to report, not a reason to take the machine down
    cap = ALTERNATIVE_MEMORY_CAP_GB
    results["limit_sql"] = run_stage("limit_sql", args.size, home, nightly, memory_cap_gb=cap)
    results["pandas_marts"] = run_stage("pandas_marts", args.size, home, nightly, memory_cap_gb=cap)
    # last: it writes 35 run dates of predictions into the warehouse
    results["live_evaluation"] = run_stage("live_evaluation", args.size, home, nightly)
    text = report(args.size, results, machine())
    out = ROOT / "results" / f"{args.size}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    (ROOT / "results" / f"{args.size}.json").write_text(json.dumps(results, indent=2))
    print("\n" + text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
