"""A baseline version's registry artifact: ``baseline.json`` (its name, parameters, metrics,
reason), written and read the same way for the forecaster's and the ranker's baselines."""

from __future__ import annotations

import json
from pathlib import Path

BASELINE_FILE = "baseline.json"


def save_baseline(baseline, folder: Path) -> list[Path]:
    """Write a baseline version's artifact: its parameters (``baseline``: the name, and the
    rest), the metrics and the reason it serves."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BASELINE_FILE
    payload = {**baseline.params, "reason": baseline.reason, "metrics": baseline.metrics}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=float))
    return [path]


def read_baseline(folder: Path) -> tuple[str, dict, str, dict]:
    """(name, other parameters, reason, metrics) of the baseline version saved in ``folder``."""
    payload = json.loads((folder / BASELINE_FILE).read_text())
    reason, metrics = payload.pop("reason", ""), payload.pop("metrics", {})
    return payload.pop("baseline"), payload, reason, metrics
