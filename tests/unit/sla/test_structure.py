"""The checker's structure: modules import each other without a cycle, a run leaves the
caller's options alone, and statuses keep the strings reports have always written."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from slakit.errors import SlakitError
from slakit.sla import RunOptions, run_checks
from slakit.sla.spec import parse_spec
from slakit.status import Status

PACKAGE = Path(__file__).resolve().parents[3] / "slakit" / "sla"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """slakit.sla module -> the slakit.sla modules it imports anywhere (functions too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_the_modules_of_the_checker_import_each_other_without_a_cycle():
    graph = import_graph()
    assert {"slakit.sla.engine", "slakit.sla.ramp", "slakit.sla.evaluate"} <= set(graph)
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")
    assert order.index("slakit.sla.ramp") < order.index("slakit.sla.engine")
    assert "slakit.sla.engine" not in graph["slakit.sla.ramp"]


def test_no_module_below_the_package_imports_the_package_itself():
    graph = import_graph()
    assert [m for m, targets in graph.items() if "slakit.sla" in targets] == []


def test_a_run_leaves_the_callers_options_alone():
    spec = parse_spec(
        {
            "version": 1,
            "stories": [{"id": "s", "name": "s", "endpoints": [{"method": "GET", "path": "/"}]}],
        }
    )
    options = RunOptions(load_test=True)
    with pytest.raises(SlakitError, match="unknown story 'nope'"):
        run_checks(spec, "http://127.0.0.1:9", ["nope"], options=options)
    assert options == RunOptions(load_test=True)


def test_statuses_are_the_strings_the_reports_write():
    assert [s.value for s in Status] == ["pass", "fail", "invalid", "skipped", "info"]
    assert f"{Status.INVALID}" == "invalid" and Status.PASS == "pass"
