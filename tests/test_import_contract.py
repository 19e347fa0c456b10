"""The import contract: three layers, one direction, no cycle.

- ``ml`` (pure model code) imports no ``shopflow``, ``dags`` or ``bench`` module;
- the platform (every ``shopflow`` module except ``shopflow.jobs`` and ``shopflow.cli``)
  imports no ``ml``, ``shopflow.jobs`` or ``shopflow.cli`` module;
- the DAG files import, of the project, only ``shopflow.jobs.steps`` and the Airflow
  components the platform defines for them (``DAG_COMPONENTS``: timetables, sensors), and
  besides the standard library only Airflow;
- the project's module graph has no cycle.

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, relative.
Each rule is a function of a graph ``{module: {imported module, ...}}``, so the tests at the
end feed each one a small violating graph and see it caught.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ml", "shopflow", "dags")
PROJECT_TOPS = ("ml", "shopflow", "dags", "bench", "tests")


# -- building the graph ------------------------------------------------------------------------
def module_name(path: Path, root: Path = REPO_ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Module name -> file, for every .py file of ml/, shopflow/ and dags/."""
    return {
        module_name(path, root): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Every module ``source`` imports, anywhere in the file. ``from a import b`` imports
    ``a``, and ``a.b`` too when that is a module of the project."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_package, node.level, node.module)
                if node.level
                else node.module
            )
            found.add(base)
            found.update(
                f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known
            )
    return found


def project_graph(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    files = source_files(root)
    known = set(files)
    return {
        module: imports_of(path.read_text(), module, path.name == "__init__.py", known)
        for module, path in files.items()
    }


# -- the rules ---------------------------------------------------------------------------------
def _within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_platform(module: str) -> bool:
    return _within(module, "shopflow") and not _within(module, "shopflow.jobs", "shopflow.cli")


def ml_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, import) pairs where ml imports shopflow, dags or bench."""
    return sorted(
        (module, imported)
        for module, imports in graph.items()
        if _within(module, "ml")
        for imported in imports
        if _within(imported, "shopflow", "dags", "bench")
    )


def platform_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, import) pairs where a platform module imports ml, the jobs or the CLI."""
    return sorted(
        (module, imported)
        for module, imports in graph.items()
        if is_platform(module)
        for imported in imports
        if _within(imported, "ml", "shopflow.jobs", "shopflow.cli")
    )


# light Airflow components a DAG file is built from (they run inside Airflow, not as steps)
DAG_COMPONENTS = frozenset({"shopflow.timetables", "shopflow.sensors"})


def dag_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, import) pairs where a DAG file imports anything but shopflow.jobs.steps,
    Airflow or the standard library."""

    def allowed(imported: str) -> bool:
        top = imported.split(".")[0]
        if top in PROJECT_TOPS:
            return imported == "shopflow.jobs.steps" or imported in DAG_COMPONENTS
        return top == "airflow" or top == "__future__" or top in sys.stdlib_module_names

    return sorted(
        (module, imported)
        for module, imports in graph.items()
        if _within(module, "dags")
        for imported in imports
        if not allowed(imported)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the graph's own modules, as [a, b, ..., a]; None if acyclic."""
    edges = {m: sorted(i for i in imports if i in graph and i != m) for m, imports in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in edges[module]:
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


# -- the project -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return project_graph()


def test_the_graph_covers_every_layer(graph):
    # a checker that sees nothing passes everything: make sure it sees the three layers
    layers = {"ml.training", "shopflow.registry", "shopflow.jobs.steps", "dags.shopflow_nightly"}
    assert layers <= set(graph)
    assert "shopflow.jobs.steps" in graph["dags.shopflow_nightly"]
    assert "shopflow.jobs.retrain" in graph["shopflow.jobs.steps"]  # an import in a function


def test_ml_imports_no_shopflow_dags_or_bench(graph):
    assert ml_violations(graph) == []


def test_platform_imports_no_ml_jobs_or_cli(graph):
    assert platform_violations(graph) == []


def test_dags_import_only_the_steps_module_and_airflow(graph):
    assert dag_violations(graph) == []


def test_the_module_graph_has_no_cycle(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# -- each rule catches a violation -------------------------------------------------------------
def test_imports_are_found_in_functions_type_checking_blocks_and_relative_forms():
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from shopflow.settings import Settings
def f():
    import shopflow.warehouse
    from . import sibling
    from ..forecast import model
"""
    known = {"ml.recommend.sibling", "ml.forecast.model"}
    found = imports_of(source, "ml.recommend.ranker", False, known)
    assert {"shopflow.settings", "shopflow.warehouse", "ml.recommend.sibling"} <= found
    assert {"ml.forecast", "ml.forecast.model"} <= found
    assert ml_violations({"ml.recommend.ranker": found}) == [
        ("ml.recommend.ranker", "shopflow.settings"),
        ("ml.recommend.ranker", "shopflow.warehouse"),
    ]


def test_the_ml_rule_catches_ml_importing_the_platform_or_bench():
    bad = {"ml.features": {"pandas", "shopflow.dbt"}, "ml.training": {"bench.stage", "ml"}}
    assert ml_violations(bad) == [("ml.features", "shopflow.dbt"), ("ml.training", "bench.stage")]


def test_the_platform_rule_catches_platform_importing_ml_jobs_or_cli():
    bad = {
        "shopflow.publish": {"ml.registry"},
        "shopflow.dbt": {"shopflow.jobs.steps"},
        "shopflow.deploy.env": {"shopflow.cli"},
        "shopflow.jobs.nightly": {"ml.training"},  # the jobs may
        "shopflow.cli": {"shopflow.jobs.backtests"},  # so may the CLI
    }
    assert platform_violations(bad) == [
        ("shopflow.dbt", "shopflow.jobs.steps"),
        ("shopflow.deploy.env", "shopflow.cli"),
        ("shopflow.publish", "ml.registry"),
    ]


def test_the_dag_rule_catches_dags_importing_anything_but_the_steps_module():
    bad = {
        "dags.nightly": {
            "airflow.sdk",
            "datetime",
            "shopflow.jobs.steps",
            "shopflow.jobs.nightly",
            "shopflow.settings",
            "ml.training",
            "pandas",
        }
    }
    assert dag_violations(bad) == [
        ("dags.nightly", "ml.training"),
        ("dags.nightly", "pandas"),
        ("dags.nightly", "shopflow.jobs.nightly"),
        ("dags.nightly", "shopflow.settings"),
    ]


def test_the_cycle_check_reports_the_modules_of_a_cycle():
    cyclic = {
        "ml.training": {"ml.forecast.backtest", "pandas"},
        "ml.forecast.backtest": {"ml.metrics", "ml.training"},
        "ml.metrics": set(),
    }
    assert find_cycle(cyclic) == ["ml.forecast.backtest", "ml.training", "ml.forecast.backtest"]
    assert find_cycle({**cyclic, "ml.forecast.backtest": {"ml.metrics"}}) is None


def _modules(tree: dict[str, str], tmp_path: Path) -> Iterator[str]:
    for name, text in tree.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        yield name


def test_the_whole_checker_catches_a_violating_tree(tmp_path):
    list(
        _modules(
            {
                "ml/__init__.py": "",
                "ml/model.py": "def f():\n    from shopflow import registry\n",
                "shopflow/__init__.py": "",
                "shopflow/registry.py": "from ml import model\n",
                "dags/__init__.py": "",
                "dags/nightly.py": "from shopflow.registry import Registry\n",
            },
            tmp_path,
        )
    )
    bad = project_graph(tmp_path)
    assert ml_violations(bad) == [("ml.model", "shopflow"), ("ml.model", "shopflow.registry")]
    assert platform_violations(bad) == [
        ("shopflow.registry", "ml"),
        ("shopflow.registry", "ml.model"),
    ]
    assert dag_violations(bad) == [("dags.nightly", "shopflow.registry")]
    cycle = find_cycle(bad)
    assert cycle[0] == cycle[-1] and set(cycle) == {"ml.model", "shopflow.registry"}
