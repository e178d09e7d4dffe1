"""The package graph keeps its shape: no import cycles inside `ssegate.fanout`, and the
fan-out core loads without Kafka's client library (it knows sources only through
`ssegate.sources`), so it runs over in-memory sources in unit tests and over a proxied SSE
upstream later."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ssegate

PACKAGE = Path(ssegate.__file__).parent


def _imports(module: Path, package: str) -> set[str]:
    """The modules of `package` that `module` imports (at any level, TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.startswith(package + "."))
    return found


def _graph(package: str) -> dict[str, set[str]]:
    directory = PACKAGE / package.removeprefix("ssegate.").replace(".", "/")
    modules = {f"{package}.{path.stem}": path for path in directory.glob("*.py")}
    modules.pop(f"{package}.__init__", None)
    return {name: _imports(path, package) & modules.keys() for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph`, as the modules along it, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_fanout_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph("ssegate.fanout")
    assert "ssegate.fanout.subscriber" in graph  # the walk found the package
    assert _cycle(graph) is None


def test_sources_import_nothing_else_of_ssegate() -> None:
    for path in (PACKAGE / "sources").glob("*.py"):
        outside = {
            name for name in _imports(path, "ssegate") if not name.startswith("ssegate.sources")
        }
        assert outside == set(), path.name


def test_the_fanout_loads_without_kafkas_client_library() -> None:
    code = (
        "import sys, ssegate.fanout.service, ssegate.sources.memory;"
        "print('confluent_kafka' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
