"""Run the dbt project (a normal dbt project: `dbt build` works on it without Shopflow).

dbt runs as a child process using the dbt executable of this Python environment. The caller
holds the warehouse lock for the whole invocation (see :mod:`shopflow.warehouse`), so no other
Shopflow step opens the file while dbt writes it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.warehouse import connect, table_exists, warehouse_lock

if TYPE_CHECKING:  # pragma: no cover
    from shopflow.settings import Settings

log = logging.getLogger(__name__)


class DbtBuildError(RuntimeError):
    """dbt reported failed models or tests."""


@dataclass
class DbtResult:
    command: list[str]
    seconds: float
    results: list[dict]

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if r["status"] in ("error", "fail", "runtime error")]

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return {"seconds": round(self.seconds, 2), "statuses": counts}


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def _read_run_results(target_dir: Path) -> list[dict]:
    path = target_dir / "run_results.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [
        {
            "unique_id": r["unique_id"],
            "status": r["status"],
            "message": r.get("message"),
            "failures": r.get("failures"),
            "seconds": r.get("execution_time"),
        }
        for r in data.get("results", [])
    ]


def run_dbt(
    settings: Settings,
    args: list[str],
    run_date: dt.date,
    *,
    full_refresh: bool = False,
    target_dir: Path | None = None,
    extra_vars: dict | None = None,
) -> DbtResult:
    """Run ``dbt <args>`` for a business date; raise DbtBuildError naming what failed."""
    target_dir = target_dir or settings.home / "dbt" / "target"
    log_dir = settings.home / "dbt" / "logs"
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target-path",
        str(target_dir),
        "--log-path",
        str(log_dir),
        "--vars",
        json.dumps({"run_date": run_date.isoformat(), **settings.dbt_vars(), **(extra_vars or {})}),
    ]
    if full_refresh:
        command.append("--full-refresh")
    env = {**os.environ, **settings.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    _check_free_space(settings)
    log_file = log_dir / "dbt.log"
    log_start = log_file.stat().st_size if log_file.exists() else 0
    started = time.perf_counter()
    with warehouse_lock(settings):
        process = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    for line in process.stdout.splitlines():
        log.info("dbt | %s", line)
    log.info("dbt %s for %s finished in %.2f s", " ".join(args), run_date, seconds)
    result = DbtResult(command, seconds, _read_run_results(target_dir))
    if process.returncode != 0:
        _raise_machine_error(settings, log_file, log_start, process.stdout + process.stderr)
        failed = result.failures
        detail = (
            "; ".join(
                f"{r['unique_id']}: {r['status']} ({(r['message'] or '').strip()[:200]})"
                for r in failed[:10]
            )
            or (process.stderr.strip() or process.stdout.strip())[-2000:]
        )
        raise DbtBuildError(
            f"dbt {' '.join(args)} for {run_date} failed ({len(failed)} node(s)): {detail}. "
            f"Full log: {log_dir / 'dbt.log'}"
        )
    return result


# a build rewrites incremental partitions and spills to tmp/: a quarter of the warehouse file
# (at least 64 MB) free before it starts, so that a full disk is said before dbt starts
MIN_FREE_BYTES = 64 * 1024 * 1024


def free_space_needed(settings: Settings) -> int:
    """Bytes a dbt build wants free beside the warehouse before it starts (an estimate)."""
    size = settings.warehouse_path.stat().st_size if settings.warehouse_path.exists() else 0
    return max(MIN_FREE_BYTES, size // 4)


def _check_free_space(settings: Settings) -> None:
    from shopflow.machine import require_free_space

    require_free_space(settings.warehouse_dir, free_space_needed(settings), "the dbt build")


def _raise_machine_error(settings: Settings, log_file: Path, start: int, output: str) -> None:
    """dbt's CLI says only "See the log for the traceback": find a full disk or a held file
    in its output and in what this invocation added to its log, and raise it plainly.

    A full disk also says what the build needed, and whether DuckDB left its write-ahead log
    beside the warehouse: that file holds committed work, DuckDB replays it on the next open,
    so it must be kept, not deleted."""
    from shopflow.machine import DiskFullError, explain

    tail = ""
    if log_file.exists():
        with open(log_file, "rb") as f:
            f.seek(max(start, log_file.stat().st_size - 200_000))
            tail = f.read().decode(errors="replace")
    needed = free_space_needed(settings)
    for text in (output, tail):
        for line in reversed(text.splitlines()):
            plain = explain(
                RuntimeError(line), settings.warehouse_dir, needed=needed, what="the dbt build"
            )
            if plain is None or "Permission denied" in line:
                continue
            wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
            if isinstance(plain, DiskFullError) and wal.exists():
                plain = DiskFullError(
                    f"{plain} DuckDB left {wal} ({wal.stat().st_size:,} bytes): keep it, it "
                    "holds committed work that the next run replays once space is free."
                )
            raise plain


# dbt runs up to `threads` (profiles.yml) models at once over its one DuckDB connection, and
# DuckDB's memory limit (SHOPFLOW_DUCKDB_MEMORY_LIMIT) is shared by all of them. A night's
# increments are small, so they overlap. A full build materialises every large model from
# scratch: at 48 million order lines three feature models at once ran out of a 4 GB limit
# ("failed to pin block"), while one at a time each spills to SHOPFLOW_TMP_DIR and completes.
# Adding the training cutoffs to the per-cutoff feature models (build_training_features) is
# as heavy (each training cutoff is a year of order lines) and ran out of memory the same way
# at that size: it runs one model at a time too.
FULL_BUILD_THREADS = 1
# A nightly build of a shop this large is run one model at a time too: its per-cutoff feature
# models and full-history marts each scan a year or more of order lines. At 48 million lines
# the nightly build with 4 threads ran out of a 4 GB limit (and with 10 GB spilled until the
# disk was full), while one model at a time it completed in 81.6 s with a 4.6 GB peak RSS.
# Size M (4.8 million lines) keeps dbt's threads.
LARGE_SHOP_ORDER_LINES = 20_000_000


def is_first_build(settings: Settings) -> bool:
    """True when the warehouse holds no built feature model yet: the next build computes
    every incremental model in full, like a full refresh."""
    if not settings.warehouse_path.exists():
        return True
    with connect(settings, read_only=True) as con:
        return not table_exists(con, "features", "feat_product_daily")


def is_large_shop(settings: Settings) -> bool:
    """True when the warehouse holds more than LARGE_SHOP_ORDER_LINES order lines."""
    if not settings.warehouse_path.exists():
        return False
    with connect(settings, read_only=True) as con:
        if not table_exists(con, "marts", "fct_order_lines"):
            return False
        lines = con.execute("select count(*) from marts.fct_order_lines").fetchone()[0]
    return lines > LARGE_SHOP_ORDER_LINES


def build_warehouse(
    settings: Settings, run_date: dt.date, *, full_refresh: bool = False, raise_on_failure=True
):
    """`dbt build` of every model and test, as of ``run_date``.

    A full build (``full_refresh``, or the first build of a warehouse) and any build of a
    large shop (:func:`is_large_shop`) run one model at a time (FULL_BUILD_THREADS), so
    each large model has the whole DuckDB memory limit.
    With ``raise_on_failure=False`` failed models and tests are returned instead of raised
    (the nightly DAG reports them per model, see :func:`node_reports`); dbt failing to run at
    all (no results) still raises.
    """
    args = ["build"]
    if full_refresh or is_first_build(settings) or is_large_shop(settings):
        args += ["--threads", str(FULL_BUILD_THREADS)]
    try:
        return run_dbt(settings, args, run_date, full_refresh=full_refresh)
    except DbtBuildError:
        if raise_on_failure:
            raise
        target_dir = settings.home / "dbt" / "target"
        results = _read_run_results(target_dir)
        if not results:
            raise
        return DbtResult(["dbt", "build"], 0.0, results)


# the per-cutoff feature models (see dbt_project/macros/feature_cutoffs.sql)
PER_CUTOFF_FEATURES = [
    "feat_customer_product",
    "feat_product_popularity",
    "feat_product_cooccurrence",
]


def project_vars(settings: Settings) -> dict:
    """The vars of dbt_project.yml, as a `dbt build` without --vars overrides sees them."""
    import yaml

    project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text())
    return dict(project["vars"])


def training_cutoff_offsets(settings: Settings) -> list[int]:
    """The ranker's training cutoffs, in days before the run date (the dbt project's var
    ``training_cutoff_offsets_days``)."""
    return [int(days) for days in project_vars(settings)["training_cutoff_offsets_days"]]


def build_training_features(
    settings: Settings, run_date: dt.date, cutoffs_per_run: int | None = 1
) -> DbtResult:
    """Add the ranker's training cutoffs to the per-cutoff feature models, as of ``run_date``.

    The nightly build computes the scoring cutoff only. Training, retraining and backtests
    call this first: the models are incremental by cutoff, so on top of the night's build
    only the training cutoffs are computed (the run date's rows are kept as they are), and
    the next nightly build drops them again. Models and tests of these three models only:
    nothing else in the warehouse changes.

    Each training cutoff covers a year of order lines, as much as a full build's, so they are
    added one cutoff per dbt invocation (the first offset, then the first two ...: each run
    computes the one cutoff its table lacks and keeps the others), one model at a time
    (FULL_BUILD_THREADS). At 48 million order lines the three cutoffs at once ran out of a
    4 GB DuckDB memory limit in ``count(distinct ...)``; the scoring cutoff alone is what
    the full build computes. The result gathers every invocation's node results.

    ``cutoffs_per_run`` adds that many cutoffs per invocation instead (``None``: all in one):
    on a small shop each dbt invocation costs more in start-up than its cutoff's queries.
    """
    offsets = training_cutoff_offsets(settings)
    step = cutoffs_per_run or len(offsets)
    uptos = [*range(step, len(offsets), step), len(offsets)]
    runs = []
    for upto in uptos:
        runs.append(
            run_dbt(
                settings,
                ["build", "--select", *PER_CUTOFF_FEATURES, "--threads", str(FULL_BUILD_THREADS)],
                run_date,
                target_dir=settings.home / "dbt" / "training-target",
                extra_vars={
                    "with_training_cutoffs": True,
                    "training_cutoff_offsets_days": offsets[:upto],
                },
            )
        )
    return DbtResult(
        runs[-1].command,
        sum(run.seconds for run in runs),
        [result for run in runs for result in run.results],
    )


def node_reports(settings: Settings, result: DbtResult) -> list[dict]:
    """One report per model (seeds and snapshots too): its own status plus its tests'.

    Tests are attached to the model they test (``attached_node`` in dbt's manifest; a test on
    several models goes to the first). Lets the DAG show one task per model without running
    dbt once per model.
    """
    manifest_path = settings.home / "dbt" / "target" / "manifest.json"
    nodes = json.loads(manifest_path.read_text())["nodes"] if manifest_path.exists() else {}
    reports: dict[str, dict] = {}
    tests = []
    for item in result.results:
        unique_id = item["unique_id"]
        if unique_id.startswith(("test.", "unit_test.")):
            tests.append(item)
            continue
        reports[unique_id] = {
            "model": unique_id.split(".")[-1],
            "unique_id": unique_id,
            "status": item["status"],
            "message": item["message"],
            "seconds": item["seconds"],
            "failed_tests": [],
            "tests": 0,
        }
    for item in tests:
        node = nodes.get(item["unique_id"], {})
        parent = node.get("attached_node") or next(
            iter(n for n in node.get("depends_on", {}).get("nodes", []) if n in reports), None
        )
        if item["unique_id"].startswith("unit_test."):
            # unit_test.<project>.<model>.<name>: unit tests belong to the model they test
            _, project, model, *_ = item["unique_id"].split(".")
            parent = f"model.{project}.{model}"
        if parent not in reports:
            continue
        reports[parent]["tests"] += 1
        if item["status"] in ("fail", "error", "runtime error"):
            name = item["unique_id"].split(".")[2]
            reports[parent]["failed_tests"].append(
                f"{name}: {(item['message'] or item['status']).strip()[:300]}"
            )
    # A skipped model's task names what failed upstream (the cause), and every task the
    # build's log as a real path.
    failed = [
        f"{item['unique_id'].split('.')[2]}: {(item['message'] or item['status']).strip()[:200]}"
        for item in result.results
        if item["status"] in ("fail", "error", "runtime error")
    ]
    for report in reports.values():
        report["log_path"] = str(settings.home / "dbt" / "logs" / "dbt.log")
        if report["status"] == "skipped":
            report["upstream_failures"] = failed[:5]
    return sorted(reports.values(), key=lambda r: r["model"])
