"""The package's shape: no import circles, no oversized module.

Read from the source with :mod:`ast` (nothing is imported), so the test sees every import:
module level, under ``TYPE_CHECKING`` and inside functions alike. A lazy import inside a
function still ties two modules together; a circle through it is a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pacsradar

PACKAGE = Path(pacsradar.__file__).parent
#: About 600 lines (HACKING.md "Layout"); the compiled file core is allowed to be larger.
MAX_LINES = 600
SIZE_EXEMPT = frozenset({"pacsradar.files.core"})


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _known(name: str) -> str | None:
    """The pacsradar module that ``name`` (a module or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _known(alias.name)) is not None:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*head, *([node.module] if node.module else [])])
            for alias in node.names:
                target = _known(f"{base}.{alias.name}") or _known(base)
                if target is not None:
                    yield target


def import_graph() -> dict[str, set[str]]:
    return {m: {t for t in _imports(m, p) if t != m} for m, p in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_sees_a_circle() -> None:
    # Given a graph where a imports b, b imports c and c imports a (and d stands alone)
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    # When its cycles are computed
    # Then the circle is reported once, and d, which only leans on it, is not in it
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle_inside_pacsradar() -> None:
    # Given every import in the package, lazy and TYPE_CHECKING ones included
    graph = import_graph()
    # When the strongly connected components are computed
    found = cycles(graph)
    # Then there are none: each layer only imports the layers below it
    assert found == [], f"import circles: {found}"


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    # Given modules known to import lazily (inside a function) and under TYPE_CHECKING
    graph = import_graph()
    # Then both kinds of edge are in the graph the cycle test walks
    assert "pacsradar.registry" in graph["pacsradar.web.auditor"]  # inside __init__
    assert "pacsradar.store.core" in graph["pacsradar.report.context"]  # TYPE_CHECKING


def test_no_module_exceeds_the_size_bound() -> None:
    # Given every module of the package but the exempt ones
    sizes = {
        m: MODULES[m].read_text(encoding="utf-8").count("\n") for m in sorted(set(MODULES) - SIZE_EXEMPT)
    }
    # Then each stays within the bound: split a module by concern when it grows past it
    oversized = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert oversized == {}, f"modules over {MAX_LINES} lines: {oversized}"


def test_dicom_scan_start_up_loads_no_web_tls_or_store_stack() -> None:
    # Given a fresh interpreter that loads the CLI and the DICOM checks, as `scan --only dicom` does
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, sys; from pacsradar.cli import _register; _register();"
        " import pacsradar.registry as r; r.dicom_checks();"
        " print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    loaded = set(json.loads(proc.stdout))
    # Then the heavy stacks it does not need stay unloaded (start-up stays short, bench/README.md)
    assert not loaded & {"httpx", "sqlalchemy", "pacsradar.tls", "pacsradar.web.client", "pacsradar.store"}
