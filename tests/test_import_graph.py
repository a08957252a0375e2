"""``compare``'s modules import only downward: no circle, and the port checker below its faces.

The graph is read from the source with ``ast``, not by importing: every
``import`` and ``from ... import`` statement counts, at module level or
inside a function (a lazy import is still a dependency), with relative
imports resolved. An edge goes to the module named (``from .port import
check_port`` is an edge to ``compare.port``; ``from . import ch4`` to
``compare.cli.ch4`` where that is a module), never implicitly to the
packages above it, as with every package whose ``__init__`` imports its
own parts.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "compare"
FACES = ("compare.cli", "compare.testing", "compare.pytest_plugin")


def modules(root):
    """``{dotted name: path}`` of every module under ``root`` (a package folder)."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name,) + path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(node, name, is_package, known):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module
    found = [prefix] if node.module else []
    # ``from pkg import sub`` imports the submodule when there is one
    found += [f"{prefix}.{alias.name}" for alias in node.names if f"{prefix}.{alias.name}" in known]
    return found or [prefix]


def import_graph(root=ROOT):
    """``{module: set of compare's modules it imports}``."""
    known = modules(root)
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, name, path.name == "__init__.py", known):
                    if target in known and target != name:
                        edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One cycle as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def climbs(graph):
    """Edges from the port checker up into the command line or the pytest helpers."""
    return sorted((a, b) for a, edges in graph.items() if a.split(".")[:2] == ["compare", "port"]
                  for b in edges if any(b == f or b.startswith(f + ".") for f in FACES))


@pytest.mark.slow  # reads every module's source: in the full run
def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    # edges of each form: relative, lazy (inside a function), from a package to its parts
    assert "compare.port" in graph["compare"]
    assert "compare.cli.ch4" in graph["compare.cli"]
    assert "compare.port.benchmark" in graph["compare.cli.ch4"]  # a lazy import
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.slow
def test_no_import_circle_in_compare():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.slow
def test_the_port_checker_imports_neither_the_command_line_nor_the_pytest_helpers():
    bad = climbs(import_graph())
    assert not bad, "compare.port climbs into its faces: " + "; ".join(f"{a} -> {b}" for a, b in bad)
