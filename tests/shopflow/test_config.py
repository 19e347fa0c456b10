"""The shop's one configuration: shopflow.toml, environment overrides, one source for the
GX suites, dbt vars and Python."""

from __future__ import annotations

import pytest

from shopflow.cli import main
from shopflow.config import ConfigError, iso_currencies
from shopflow.quality.suites import load_suite_spec
from shopflow.settings import load_settings


def _home(tmp_path, toml: str | None = None):
    home = tmp_path / "home"
    home.mkdir()
    if toml is not None:
        (home / "shopflow.toml").write_text(toml)
    return home


def test_without_a_file_every_iso_currency_is_accepted_and_the_day_is_utc(tmp_path):
    settings = load_settings({"SHOPFLOW_HOME": str(_home(tmp_path))})

    assert {"BRL", "EUR", "GBP", "JPY", "ZAR"} <= set(settings.known_currencies)
    assert settings.known_currencies == iso_currencies()
    assert settings.timezone == "UTC"
    assert settings.config_sources["known_currencies"] == "default"


def test_the_file_sets_values_and_the_environment_wins(tmp_path):
    home = _home(
        tmp_path,
        '[shop]\ncurrencies = ["brl"]\ntimezone = "America/Sao_Paulo"\n'
        "[outputs]\nrecommendations_k = 5\n[quality]\nvolume_drop_ratio = 0.05\n",
    )
    settings = load_settings({"SHOPFLOW_HOME": str(home), "SHOPFLOW_RECOMMENDATIONS_K": "7"})

    assert settings.known_currencies == ("BRL",)
    assert settings.timezone == "America/Sao_Paulo"
    assert settings.recommendations_k == 7
    assert settings.volume_drop_ratio == 0.05
    assert settings.config_sources["recommendations_k"] == "env SHOPFLOW_RECOMMENDATIONS_K"
    assert settings.config_sources["timezone"] == f"{home / 'shopflow.toml'} [shop.timezone]"
    assert settings.dbt_vars() == {"currencies": ["BRL"], "shop_timezone": "America/Sao_Paulo"}


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[shop]\ncurrencies = ["BRX"]\n', {}, "not ISO 4217 currency codes: BRX"),
        ('[shop]\ntimezone = "Mars/Olympus"\n', {}, "'Mars/Olympus' is not an IANA time zone"),
        ("[shop]\ncurrency = 1\n", {}, "unknown setting(s) shop.currency"),
        ("", {"SHOPFLOW_RECOMMENDATIONS_K": "ten"}, "outputs.recommendations_k (env "),
    ],
)
def test_a_bad_value_is_an_error_naming_the_setting(tmp_path, toml, env, message):
    home = _home(tmp_path, toml)

    with pytest.raises(ConfigError) as error:
        load_settings({"SHOPFLOW_HOME": str(home), **env})

    assert message in str(error.value)


def test_suites_read_the_configured_values(tmp_path):
    home = _home(
        tmp_path,
        '[shop]\ncurrencies = ["BRL"]\ntimezone = "America/Sao_Paulo"\n'
        "[quality]\nmax_quarantined_share = 0.02\nmax_line_quantity = 500\n",
    )
    settings = load_settings({"SHOPFLOW_HOME": str(home)})

    lines = {
        e["meta"].get("rule") or e["meta"]["description"]: e
        for e in load_suite_spec(settings, "landing_order_lines")["expectations"]
    }
    partitions = load_suite_spec(settings, "landing_partitions")["expectations"]

    assert lines["unknown_currency"]["kwargs"]["value_set"] == ["BRL"]
    assert lines["ordered_at_outside_partition_date"]["meta"]["description"].startswith(
        "ordered_at falls on the partition's date (America/Sao_Paulo;"
    )
    extreme = lines[
        "quantity stays within 500 units per line (an extreme order or its cancellation)"
    ]
    assert (extreme["kwargs"]["min_value"], extreme["kwargs"]["max_value"]) == (-500, 500)
    assert partitions[0]["kwargs"]["max_value"] == 0.02
    assert partitions[0]["meta"]["description"].startswith("at most 2% of a partition's rows")


def test_config_show_prints_each_value_and_its_source(tmp_path, monkeypatch, capsys):
    home = _home(tmp_path, '[shop]\ncurrencies = ["BRL"]\n')
    monkeypatch.setenv("SHOPFLOW_HOME", str(home))
    monkeypatch.setenv("SHOPFLOW_TIMEZONE", "America/Sao_Paulo")

    assert main(["config", "show"]) == 0

    out = capsys.readouterr().out
    assert f"shop.currencies = BRL    <- {home / 'shopflow.toml'} [shop.currencies]" in out
    assert "shop.timezone = America/Sao_Paulo    <- env SHOPFLOW_TIMEZONE" in out
    assert "outputs.recommendations_k = 10    <- default" in out


def test_a_bad_configuration_file_stops_the_cli_with_its_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SHOPFLOW_HOME", str(_home(tmp_path, "[shop\n")))

    assert main(["config", "show"]) == 2

    assert "shopflow.toml: not valid TOML" in capsys.readouterr().err


def test_a_new_demo_home_switches_the_schedule_off_and_a_configured_one_is_left_alone(
    tmp_path, monkeypatch
):
    import datetime as dt

    from shopflow.cli import configure_demo_home, schedule_line

    monkeypatch.delenv("SHOPFLOW_SCHEDULE", raising=False)
    demo = load_settings({"SHOPFLOW_HOME": str(tmp_path / "demo")})
    demo.ensure_dirs()
    assert demo.schedule is True
    configured = configure_demo_home(demo, dt.date(2025, 5, 30))
    assert configured.schedule is False
    assert "2025-05-30" in (tmp_path / "demo" / "shopflow.toml").read_text()
    assert schedule_line(configured).startswith("schedule: off")

    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "shopflow.toml").write_text('[shop]\ncurrencies = ["BRL"]\n')
    kept = configure_demo_home(load_settings({"SHOPFLOW_HOME": str(shop)}), dt.date(2025, 5, 30))
    assert kept.schedule is True
    assert (shop / "shopflow.toml").read_text() == '[shop]\ncurrencies = ["BRL"]\n'
