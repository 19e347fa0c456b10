"""Committed suites: ``expectations/suites/<name>.json``, read and checked without GX.

Each file is a GX 1.x ExpectationSuite (``name``, ``expectations`` with ``type`` / ``kwargs``
/ ``meta``) plus Shopflow's conventions, checked by :func:`load_suite_specs`:

* ``meta.severity`` on the suite (``"blocking"`` or ``"warning"``), optionally overridden per
  expectation; a blocking failure stops the pipeline, a warning is reported and the run goes
  on.
* ``meta.description`` on every expectation: the rule in plain words ("quantity is never
  zero"). Failure messages, the task log and the gate's error use it, so on-call reads rules,
  not expectation class names.
* ``meta.severity: "quarantine"`` on a row-level expectation (with a short ``meta.rule`` id):
  the rows that break it are set aside instead of blocking the batch (see shopflow.ingest).
* ``meta.unit`` on the suite: what one row of the validated frame is ("partition",
  "product"); messages then say "2 partitions break it".
* ``meta.id_columns`` on the suite: columns that identify a row (e.g. ``["product_id"]``);
  examples in messages then name the row: ``(product_id='P7', days_present=40)``.
* Values the shop configures (shopflow.config) are not written into a suite: a kwarg
  ``{"$setting": "known_currencies"}`` takes the setting's value, a ``{"$setting": "x",
  "scale": -1}`` its value times -1, ``meta.severity`` may be a ``{"$setting": ...}`` too,
  and a description names one as ``{max_line_quantity:,}``
  (Python format syntax), so the rule's words always state the threshold in force.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.core.expectation_suite import ExpectationSuite

    from shopflow.settings import Settings

BLOCKING = "blocking"
WARNING = "warning"
QUARANTINE = "quarantine"
SEVERITIES = (BLOCKING, WARNING)  # of a suite
EXPECTATION_SEVERITIES = (BLOCKING, WARNING, QUARANTINE)  # of one expectation


def suites_dir(settings: Settings) -> Path:
    """The folder of committed suites, one JSON file per suite."""
    return settings.expectations_dir / "suites"


def load_suite_specs(settings: Settings) -> dict[str, dict]:
    """Every committed suite, name -> parsed JSON, checked against Shopflow's conventions.

    Cheap (no GX import): usable in DAG integrity tests and lint steps.
    """
    specs = {}
    for path in sorted(suites_dir(settings).glob("*.json")):
        spec = apply_settings(json.loads(path.read_text()), settings)
        check_spec(spec, path)
        specs[spec["name"]] = spec
    return specs


def load_suite_spec(settings: Settings, suite_name: str) -> dict:
    """One committed suite, checked; ``KeyError`` naming the known suites if it is not there."""
    path = suites_dir(settings) / f"{suite_name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in suites_dir(settings).glob("*.json"))) or "none"
        raise KeyError(f"no quality suite {suite_name!r} in {path.parent} (known: {known})")
    spec = apply_settings(json.loads(path.read_text()), settings)
    check_spec(spec, path)
    return spec


def _setting_value(reference: dict, settings: Settings):
    name = reference["$setting"]
    if not hasattr(settings, name):
        raise ValueError(f"a suite refers to an unknown setting {name!r}")
    value = getattr(settings, name)
    if isinstance(value, tuple):
        return list(value)
    return value * reference["scale"] if "scale" in reference else value


def apply_settings(spec: dict, settings: Settings) -> dict:
    """The spec with every ``{"$setting": name}`` kwarg and ``{name}`` in a description
    replaced by the shop's configured value (a new dict; the committed file is unchanged)."""

    def resolve(value):
        if isinstance(value, dict) and "$setting" in value:
            return _setting_value(value, settings)
        return value

    def describe(text: str) -> str:
        if "{" not in text:
            return text
        return text.format(**{name: getattr(settings, name) for name in _names(text)})

    expectations = []
    entries = spec.get("expectations")
    if not isinstance(entries, list):
        return spec  # check_spec names what is wrong
    for entry in entries:
        meta = dict(entry.get("meta") or {})
        if "description" in meta:
            meta["description"] = describe(meta["description"])
        if isinstance(meta.get("severity"), dict):  # a severity the shop configures
            meta["severity"] = _setting_value(meta["severity"], settings)
        kwargs = {key: resolve(value) for key, value in (entry.get("kwargs") or {}).items()}
        expectations.append({**entry, "kwargs": kwargs, "meta": meta})
    return {**spec, "expectations": expectations}


def _names(text: str) -> set[str]:
    import string

    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def check_spec(spec: dict, path: Path) -> None:
    """Raise ``ValueError`` naming the file and expectation when ``spec`` breaks a convention."""
    if spec.get("name") != path.stem:
        raise ValueError(f"{path}: suite name {spec.get('name')!r} must equal the file name")
    severity = spec.get("meta", {}).get("severity")
    if severity not in SEVERITIES:
        raise ValueError(f"{path}: meta.severity must be one of {SEVERITIES}, got {severity!r}")
    expectations = spec.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ValueError(f"{path}: a suite needs a non-empty 'expectations' list")
    for number, expectation in enumerate(expectations, start=1):
        meta = expectation.get("meta") or {}
        where = f"{path}: expectation #{number} ({expectation.get('type')})"
        if not str(meta.get("description") or "").strip():
            raise ValueError(f"{where} needs meta.description, the rule in plain words")
        if meta.get("severity", severity) not in EXPECTATION_SEVERITIES:
            raise ValueError(f"{where}: meta.severity must be one of {EXPECTATION_SEVERITIES}")
        if meta.get("severity") == QUARANTINE and not str(meta.get("rule") or "").strip():
            raise ValueError(f"{where}: a quarantine rule needs meta.rule, a short rule id")


def has_quarantine_rules(spec: dict) -> bool:
    """Does the suite set rows aside (some expectation has severity ``quarantine``)?"""
    return any((e.get("meta") or {}).get("severity") == QUARANTINE for e in spec["expectations"])


def build_suite(spec: dict) -> ExpectationSuite:
    """The GX ExpectationSuite of a committed spec; ``ValueError`` on an invalid expectation."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    # ExpectationSuite() logs and *drops* an invalid expectation instead of raising; build
    # each one first so a typo in a committed suite fails loudly.
    for number, entry in enumerate(spec["expectations"], start=1):
        try:
            ExpectationConfiguration(**entry).to_domain_obj()
        except Exception as exc:
            raise ValueError(
                f"suite {spec['name']}: expectation #{number} ({entry.get('type')}) is not "
                f"valid: {exc}"
            ) from exc
    return gx.ExpectationSuite(
        name=spec["name"],
        expectations=[dict(entry) for entry in spec["expectations"]],
        meta=dict(spec.get("meta") or {}),
    )
