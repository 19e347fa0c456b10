"""One configuration of the shop: ``$SHOPFLOW_HOME/shopflow.toml`` plus environment overrides.

Every knob that describes the shop (its currencies, the time zone of its business day, the
quality thresholds, K, the forecast horizon, the activity windows) is declared once here, in
:data:`OPTIONS`, with its TOML key, its environment variable, its default and its meaning.
:func:`shopflow.settings.load_settings` reads them through :func:`resolve`; the GX suites
(``{"$setting": ...}`` in ``expectations/suites/*.json``), the dbt tests (dbt vars passed by
``shopflow.dbt``) and the Python code all read the resolved :class:`~shopflow.settings.Settings`,
so a value is stated in one place. ``shopflow config show`` prints each value and where it
came from.

Precedence: an environment variable (``SHOPFLOW_*``) wins over ``shopflow.toml``, which wins
over the default. An example::

    [shop]
    currencies = ["BRL"]          # default: any ISO 4217 code
    timezone = "America/Sao_Paulo"  # business day = the shop's local date (default UTC)

    [quality]
    max_quarantined_share = 0.05
    volume_drop_ratio = 0.1

    [outputs]
    recommendations_k = 10

    [airflow]
    schedule = true               # false: no scheduled runs, only the ones asked for
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE_NAME = "shopflow.toml"
_ISO_CURRENCIES_FILE = Path(__file__).resolve().parent / "data" / "iso4217_currencies.txt"


class ConfigError(ValueError):
    """shopflow.toml or an environment variable holds a value Shopflow cannot use."""


@functools.cache
def iso_currencies() -> tuple[str, ...]:
    """Every ISO 4217 currency code in circulation (embedded data, no network)."""
    lines = _ISO_CURRENCIES_FILE.read_text().splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _as_int(value: Any) -> int:
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError
        return int(value)
    except (TypeError, ValueError):
        raise ValueError("must be an integer") from None


def _as_float(value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None


def _as_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _as_currencies(value: Any) -> tuple[str, ...]:
    """A list (TOML) or comma-separated string (environment) of ISO 4217 codes."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a list of ISO 4217 codes")
    codes = tuple(str(code).strip().upper() for code in items if str(code).strip())
    unknown = [code for code in codes if code not in iso_currencies()]
    if unknown:
        raise ValueError(f"not ISO 4217 currency codes: {', '.join(unknown)}")
    if not codes:
        raise ValueError("lists no currency")
    return codes


def _as_timezone(value: Any) -> str:
    import zoneinfo

    name = _as_str(value)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/London)") from exc
    return name


def _as_bool(value: Any) -> bool:
    """true/false (TOML); on/off, true/false, yes/no, 1/0 (environment)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ValueError("must be true or false (on/off)")


def _as_choice(*choices: str):
    def parse(value: Any) -> str:
        text = _as_str(value)
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


@dataclass(frozen=True)
class Option:
    """One configurable value: ``field`` on Settings, ``key`` in shopflow.toml, ``env``."""

    field: str
    key: str
    env: str | None
    default: Any
    parse: Any
    meaning: str


OPTIONS: tuple[Option, ...] = (
    Option(
        "known_currencies",
        "shop.currencies",
        "SHOPFLOW_CURRENCIES",
        None,  # None: every ISO 4217 code (iso_currencies())
        _as_currencies,
        "currencies the shop may send (default: any ISO 4217 code); lines in another are "
        "quarantined",
    ),
    Option(
        "timezone",
        "shop.timezone",
        "SHOPFLOW_TIMEZONE",
        "UTC",
        _as_timezone,
        "IANA time zone of the business day: ordered_at (UTC) falls on the partition of its "
        "local date, and order dates are local dates",
    ),
    Option(
        "recommendations_k",
        "outputs.recommendations_k",
        "SHOPFLOW_RECOMMENDATIONS_K",
        10,
        _as_int,
        "recommendations per customer (K)",
    ),
    Option(
        "forecast_horizon_days",
        "outputs.forecast_horizon_days",
        "SHOPFLOW_FORECAST_HORIZON_DAYS",
        28,
        _as_int,
        "forecast horizon in days",
    ),
    Option(
        "active_customer_days",
        "outputs.active_customer_days",
        "SHOPFLOW_ACTIVE_CUSTOMER_DAYS",
        90,
        _as_int,
        "a customer with an order in this many days up to the run date gets recommendations",
    ),
    Option(
        "active_product_days",
        "outputs.active_product_days",
        "SHOPFLOW_ACTIVE_PRODUCT_DAYS",
        90,
        _as_int,
        "a product sold in this many days up to the run date is forecast",
    ),
    Option(
        "max_quarantined_share",
        "quality.max_quarantined_share",
        "SHOPFLOW_MAX_QUARANTINED_SHARE",
        0.05,
        _as_float,
        "a partition (20 rows or more) with a larger share of quarantined rows is blocked",
    ),
    Option(
        "volume_spike_ratio",
        "quality.volume_spike_ratio",
        "SHOPFLOW_VOLUME_SPIKE_RATIO",
        10.0,
        _as_float,
        "order lines of a day at this multiple of its usual volume or more block it",
    ),
    Option(
        "volume_drop_ratio",
        "quality.volume_drop_ratio",
        "SHOPFLOW_VOLUME_DROP_RATIO",
        0.1,
        _as_float,
        "order lines of a day at this share of its usual volume or less block it",
    ),
    Option(
        "history_volume_severity",
        "quality.history_volume_severity",
        "SHOPFLOW_HISTORY_VOLUME_SEVERITY",
        "warning",
        _as_choice("warning", "blocking"),
        "volume rules on a first load of history (nothing loaded yet) or a backfill of "
        "dates before the last loaded one: warning (default) or blocking",
    ),
    Option(
        "implausible_line_factor",
        "quality.implausible_line_factor",
        "SHOPFLOW_IMPLAUSIBLE_LINE_FACTOR",
        100.0,
        _as_float,
        "a line of more units than this many times the largest line its product had, and "
        "more than the shop's largest line, is implausible",
    ),
    Option(
        "implausible_line_severity",
        "quality.implausible_line_severity",
        "SHOPFLOW_IMPLAUSIBLE_LINE_SEVERITY",
        "warning",
        _as_choice("warning", "quarantine"),
        "what an implausible line does: warning (loaded, reported) or quarantine (set aside)",
    ),
    Option(
        "max_line_quantity",
        "quality.max_line_quantity",
        "SHOPFLOW_MAX_LINE_QUANTITY",
        10000,
        _as_int,
        "a line of more units than this (or a return of more) is reported as a warning",
    ),
    Option(
        "schedule",
        "airflow.schedule",
        "SHOPFLOW_SCHEDULE",
        True,
        _as_bool,
        "scheduled runs: the nightly after each business day, retraining on Sundays; false: "
        "runs only when asked (shopflow run, backfill, retrain), for a home whose data does "
        "not land every day, such as the demo shop's history",
    ),
)
OPTIONS_BY_FIELD = {option.field: option for option in OPTIONS}


@dataclass(frozen=True)
class Resolved:
    """Values per Settings field, and where each came from (``default``, the file, ``env``)."""

    values: dict[str, Any]
    sources: dict[str, str]
    config_file: Path


def config_path(home: Path) -> Path:
    """Where the shop's configuration file is: ``$SHOPFLOW_HOME/shopflow.toml``."""
    return home / CONFIG_FILE_NAME


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's values by dotted key; ConfigError naming an unknown key or bad TOML."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    flat: dict[str, Any] = {}
    for section, body in data.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: {section!r} must be a table such as [shop] or [quality]")
        for name, value in body.items():
            flat[f"{section}.{name}"] = value
    known = {option.key for option in OPTIONS}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return flat


def resolve(home: Path, env: dict[str, str]) -> Resolved:
    """Every option's value for this home: environment, then shopflow.toml, then default."""
    path = config_path(home)
    from_file = _read_toml(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        raw_env = env.get(option.env) if option.env else None
        if raw_env not in (None, ""):
            raw, source = raw_env, f"env {option.env}"
        elif option.key in from_file:
            raw, source = from_file[option.key], f"{path} [{option.key}]"
        else:
            values[option.field] = (
                iso_currencies() if option.field == "known_currencies" else option.default
            )
            sources[option.field] = "default"
            continue
        try:
            values[option.field] = option.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"setting {option.key} ({source}) {exc}, got {raw!r}") from exc
        sources[option.field] = source
    return Resolved(values, sources, path)


def show(settings) -> str:
    """``shopflow config show``: every option, its value and where it came from."""
    lines = [f"configuration file: {config_path(settings.home)}"]
    if not config_path(settings.home).is_file():
        lines[0] += " (absent: defaults and environment only)"
    for option in OPTIONS:
        value = getattr(settings, option.field)
        if option.field == "known_currencies" and tuple(value) == iso_currencies():
            shown = f"any ISO 4217 code ({len(value)} codes)"
        elif isinstance(value, tuple):
            shown = ", ".join(value)
        else:
            shown = str(value)
        source = settings.config_sources.get(option.field, "default")
        lines.append(f"{option.key} = {shown}    <- {source}")
        lines.append(f"    {option.meaning}; env {option.env}")
    return "\n".join(lines)
