"""Mappings of a shop's own exports: the README's example loads a generated shop split into
four tables (Sao Paulo wall-clock times, BRL, cancelled orders filtered), and every broken
mapping is refused with the file, the key and the rule before anything is written."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from shopflow import cli
from shopflow.adapters import load_source
from shopflow.adapters.mapping import MappingAdapter, MappingError, parse_mapping
from shopflow.generator import ShopSpec, generate_shop
from tests.conftest import REPO_ROOT
from tests.shop_exports import TIMEZONE, local_to_utc, read_landing, write_exports

SPEC = ShopSpec(customers=80, products=15, days=20, start=dt.date(2025, 3, 1), seed=5)
CONFIG = f'[shop]\ncurrencies = ["BRL"]\ntimezone = "{TIMEZONE}"\n'


def readme_mapping() -> str:
    """The YAML block of the README's "Bring your own shop's exports"."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### Bring your own shop's exports", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(generated landing dir, exports dir holding my_shop.yml, cancelled order ids)."""
    root = tmp_path_factory.mktemp("own-exports")
    generate_shop(SPEC, root / "generated")
    cancelled = write_exports(root / "generated", root / "exports")
    (root / "exports" / "my_shop.yml").write_text(readme_mapping())
    return root / "generated", root / "exports", cancelled


@pytest.fixture(scope="module")
def loaded(exports, tmp_path_factory):
    """The README mapping loaded by the CLI into a fresh BRL / Sao Paulo home."""
    _, folder, _ = exports
    home = tmp_path_factory.mktemp("mapped") / "home"
    home.mkdir()
    (home / "shopflow.toml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOPFLOW_HOME", str(home))
        assert cli.main(["load", "--mapping", str(folder / "my_shop.yml")]) == 0
    return home / "landing"


def test_order_lines_are_the_shops_minus_cancelled_orders_in_utc_by_local_date(exports, loaded):
    generated, _, cancelled = exports
    original = read_landing(generated, "order_lines")
    assert 0 < original["order_id"].isin(cancelled).sum() < len(original)
    expected = original[~original["order_id"].isin(cancelled)].assign(
        ordered_at=lambda f: local_to_utc(f["ordered_at"]), currency="BRL"
    )
    landed = read_landing(loaded, "order_lines")
    key = ["order_id", "line_number"]
    expected = expected.sort_values(key).reset_index(drop=True)
    landed = landed.sort_values(key).reset_index(drop=True)

    assert list(landed.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(landed, expected, check_dtype=False)
    # the evening's orders are on the next UTC date, yet in the partition of their local date
    assert (landed["ordered_at"].dt.strftime("%Y-%m-%d") != landed["partition_date"]).any()
    assert (loaded / "order_lines" / SPEC.start.isoformat() / "_SUCCESS").is_file()


@pytest.mark.parametrize(
    ("entity", "stamp"), [("products", "first_available_at"), ("customers", "created_at")]
)
def test_products_and_customers_land_as_exported_with_utc_times(exports, loaded, entity, stamp):
    generated, _, _ = exports
    key = f"{entity[:-1]}_id"
    expected = read_landing(generated, entity).assign(**{stamp: lambda f: local_to_utc(f[stamp])})
    landed = read_landing(loaded, entity)
    pd.testing.assert_frame_equal(
        landed.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def test_the_adapter_reports_what_each_rule_did(exports):
    _, folder, cancelled = exports
    shop = MappingAdapter().read(folder / "my_shop.yml")
    orders = pd.read_csv(folder / "orders.csv")
    items = pd.read_csv(folder / "order_items.csv", sep=";")

    assert shop.report["rows_read_orders"] == len(orders)
    assert shop.report["rows_read_items"] == len(items)
    assert shop.report["dropped_by_where_order_lines"] == items["order_ref"].isin(cancelled).sum()
    assert (
        shop.report["order_lines"]
        == len(shop.order_lines)
        == len(items) - len(items[items["order_ref"].isin(cancelled)])
    )


def test_an_entity_left_out_or_derived_is_not_landed(exports, tmp_path):
    _, folder, _ = exports
    mapping = yaml.safe_load(readme_mapping())
    del mapping["entities"]["products"]
    mapping["entities"]["customers"] = "derived"
    path = folder / "lines_only.yml"
    path.write_text(yaml.safe_dump(mapping))

    result = load_source(MappingAdapter(), path, tmp_path / "landing", timezone=TIMEZONE)

    assert result.customers == result.products == 0
    assert sorted(p.name for p in (tmp_path / "landing").iterdir()) == ["order_lines"]


def _edit(mapping: dict, case: str) -> None:
    lines = mapping["entities"]["order_lines"]
    columns = lines["columns"]
    if case == "unknown column":
        columns["discount"] = "items.price * 0.1"
    elif case == "missing column":
        del columns["quantity"]
    elif case == "no file":
        mapping["tables"]["orders"]["file"] = "exports-2025/orders-*.csv"
    elif case == "join key":
        lines["join"][0]["on"] = "items.order_ref = orders.order_id"
    elif case == "duplicating join":
        lines["join"].append(
            {"table": "customers", "on": "customers.country = orders.ship_country"}
        )
    elif case == "syntax":
        columns["unit_price"] = "items.price *"
    elif case == "unknown source column":
        columns["unit_price"] = "items.unit_price"
    elif case == "bad where":
        lines["where"] = "orders.state <> 'cancelled'"
    elif case == "not convertible":
        columns["quantity"] = "orders.status"
    elif case == "fractional":
        columns["quantity"] = "items.qty / 2"
    elif case == "time zone":
        mapping["timezone"] = "America/Sao Paulo"
    else:  # pragma: no cover
        raise AssertionError(case)


ERRORS = {
    "unknown column": ("entities.order_lines.columns.discount", "unknown contract column"),
    "missing column": ("entities.order_lines.columns.quantity", "missing required column"),
    "no file": ("tables.orders.file", "source file not found: no file matches "),
    "join key": (
        "entities.order_lines.join[0].on",
        "join key orders.order_id missing: table orders has no column 'order_id' "
        "(its columns: id, placed_at, buyer, ship_country, status)",
    ),
    "duplicating join": ("entities.order_lines.join[1]", "its key is not unique"),
    "syntax": ("entities.order_lines.columns.unit_price", "bad expression: Parser Error"),
    "unknown source column": (
        "entities.order_lines.columns.unit_price",
        "bad expression: Binder Error",
    ),
    "bad where": ("entities.order_lines.where[0]", "bad condition: Binder Error"),
    "not convertible": (
        "entities.order_lines.columns.quantity",
        "bad value for quantity (INTEGER): Conversion Error",
    ),
    "fractional": ("entities.order_lines.columns.quantity", "not an integer (INTEGER"),
    "time zone": ("timezone", "unknown time zone 'America/Sao Paulo'"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_a_broken_mapping_names_file_key_and_rule_before_writing(exports, tmp_path, case):
    _, folder, _ = exports
    mapping = yaml.safe_load(readme_mapping())
    _edit(mapping, case)
    path = folder / f"broken-{case.replace(' ', '-')}.yml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    landing = tmp_path / "landing"

    with pytest.raises(MappingError) as refused:
        load_source(MappingAdapter(), path, landing, timezone=TIMEZONE)

    key, rule = ERRORS[case]
    assert str(refused.value).startswith(f"{path}: {key}: ")
    assert rule in str(refused.value)
    assert not landing.exists()


def test_the_cli_reports_a_broken_mapping_and_refuses_mixed_arguments(
    exports, tmp_path, monkeypatch, capsys
):
    _, folder, _ = exports
    monkeypatch.setenv("SHOPFLOW_HOME", str(tmp_path / "home"))
    mapping = yaml.safe_load(readme_mapping())
    del mapping["entities"]["order_lines"]
    path = folder / "no_lines.yml"
    path.write_text(yaml.safe_dump(mapping))

    assert cli.main(["load", "--mapping", str(path)]) == 2
    assert f"{path}: entities.order_lines: required entity" in capsys.readouterr().err
    assert not (tmp_path / "home" / "landing" / "order_lines").exists()
    assert cli.main(["load", "--mapping", str(path), "extra.csv"]) == 2
    assert "takes no PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --source and --mapping exclude each other
        cli.main(["load", "--source", "online-retail-ii", "--mapping", str(path)])


def test_an_empty_mapping_file_is_refused(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("")
    with pytest.raises(MappingError, match=r"empty\.yml: \(file\): expected a mapping of keys"):
        parse_mapping(path)


def test_the_readme_mapping_parses_with_every_table_and_entity(exports):
    _, folder, _ = exports
    mapping = parse_mapping(folder / "my_shop.yml")
    assert mapping.timezone == TIMEZONE
    assert set(mapping.tables) == {"orders", "items", "customers", "products"}
    assert set(mapping.entities) == {"order_lines", "products", "customers"}
    assert mapping.tables["items"].options == {"delimiter": ";", "decimal": ","}


def test_the_module_imports_no_heavy_library() -> None:
    # a fresh interpreter: this one has pandas, duckdb and yaml imported already
    code = (
        "import sys, shopflow.adapters.mapping; "
        "heavy = {'pandas', 'duckdb', 'yaml'} & set(sys.modules); assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=env)
