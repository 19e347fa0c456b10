"""Training time of both models, this checkout against a reference checkout, in one session.

    python -m bench.training_time --size M --reference ../shopflow-ref

The reference is another checkout of the project (e.g. ``git worktree add ../shopflow-ref
<commit>`` then ``make -C ../shopflow-ref install``) with its own ``.venv``. Both run the same
stages of bench.stage, each in its own process and its own home, on the same generated shop:
generate, ingest_history, dbt_full_build, train_forecast, train_recommend; the reference first,
then this checkout, so a machine that gets busier during the run is seen in the load columns.
The report is printed and written to bench/results/<size>_training.md (and .json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.run import machine, run_stage
from bench.sizes import SIZES

ROOT = Path(__file__).resolve().parent
STAGES = ("generate", "ingest_history", "dbt_full_build", "train_forecast", "train_recommend")
TRAINING = ("train_forecast", "train_recommend")
# training at a size may take at most this much longer than the reference's
TARGET_RATIO = 1.2


def commit_of(checkout: Path) -> str:
    """The checkout's commit (short hash, '+' when it has uncommitted changes)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=checkout,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("+" if dirty else "")


def run_stages(checkout: Path, python: Path, size: str, home: Path) -> dict[str, dict]:
    """Every stage of STAGES with ``checkout``'s code and interpreter, in a fresh ``home``."""
    shutil.rmtree(home, ignore_errors=True)
    end = SIZES[size].end
    history = end - dt.timedelta(days=2)
    results = {}
    print(f"{checkout.name}:", flush=True)
    for stage in STAGES:
        day = end if stage == "generate" else history
        result = run_stage(stage, size, home, day, checkout=checkout, python=python)
        result["load_after"] = round(os.getloadavg()[0], 1)
        results[stage] = result
    return results


def report(size: str, runs: dict[str, dict], commits: dict[str, str], info: dict) -> str:
    """Markdown: each stage's seconds and peak RSS for both checkouts, and the training ratios."""
    ref, this = runs["reference"], runs["this"]
    lines = [
        f"# Training time at size {size}: {commits['this']} against {commits['reference']}",
        "",
        f"Machine: {info['machine']}; Python {info['python']}; load average at the end "
        f"(1, 5, 15 min): {info['load']}.",
        f"Run at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `python -m "
        f"bench.training_time --size {size} --reference <checkout of {commits['reference']}>`; "
        "the reference's stages ran first, each stage in its own process.",
        "",
        f"| stage | {commits['reference']} s | {commits['this']} s | x | "
        f"{commits['reference']} MB | {commits['this']} MB | load after (ref / this) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for stage in STAGES:
        r, t = ref[stage], this[stage]
        lines.append(
            f"| {stage} | {r['seconds']:.2f} | {t['seconds']:.2f} | "
            f"{t['seconds'] / r['seconds']:.2f} | {r['peak_rss_mb']:,.0f} | "
            f"{t['peak_rss_mb']:,.0f} | {r['load_after']} / {t['load_after']} |"
        )
    ref_total = sum(ref[s]["seconds"] for s in TRAINING)
    this_total = sum(this[s]["seconds"] for s in TRAINING)
    ratio = this_total / ref_total
    met = "yes" if ratio <= TARGET_RATIO else "no"
    lines += [
        "",
        "| comparison | measured | target | met |",
        "| --- | --- | --- | --- |",
        f"| training both models, this / reference | {ratio:.2f}x ({this_total:.1f} s vs "
        f"{ref_total:.1f} s) | <= {TARGET_RATIO}x | {met} |",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="S", choices=sorted(SIZES))
    parser.add_argument(
        "--reference", required=True, type=Path, help="another checkout with its own .venv"
    )
    parser.add_argument("--home", type=Path, help="working folder (default bench/.work/training)")
    args = parser.parse_args()
    reference = args.reference.resolve()
    python = reference / ".venv" / "bin" / "python"
    if not python.is_file():
        parser.error(f"{python} not found: run `make install` in {reference} first")
    home = args.home or ROOT / ".work" / "training"
    this = ROOT.parent
    commits = {"reference": commit_of(reference), "this": commit_of(this)}
    print(f"Training time, size {args.size}: {commits}", flush=True)
    runs = {
        "reference": run_stages(reference, python, args.size, home / "reference"),
        "this": run_stages(this, Path(sys.executable), args.size, home / "this"),
    }
    text = report(args.size, runs, commits, machine())
    out = ROOT / "results" / f"{args.size}_training.md"
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"commits": commits, **runs}, indent=2))
    print("\n" + text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
