"""The package's layout holds: data flows one way, and the lowest floors stay free of the upper ones.

Imports are read from the source with :mod:`ast` (module level and inside
functions alike: a lazy import is still a dependency), so the test needs no
import of the package and cannot be fooled by import order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "iizrisk"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool, files) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        pkg = module.split(".") if is_package else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    if not base.startswith("iizrisk"):
        return []
    # `from . import _time` names a module; `from .spells import Timeline` takes a name from spells
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """``{module: {iizrisk modules it imports}}`` for every module of the package."""
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # imports for type checkers only are no dependency at run time
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("iizrisk")}
            elif isinstance(node, ast.ImportFrom):
                deps |= set(_resolve(name, node, path.name == "__init__.py", files))
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


GRAPH = import_graph()


def test_the_reader_of_the_graph_sees_known_imports():
    # guards the test itself: a parser that saw nothing would make every rule below pass
    assert "iizrisk.spells" in GRAPH["iizrisk.features"]
    assert "iizrisk.view" in GRAPH["iizrisk.batch"]
    assert "iizrisk._arrays" in GRAPH["iizrisk.worklist"]
    assert len(GRAPH) > 40


def test_no_module_imports_its_way_back_to_itself():
    cycles = [c for c in _cycles({k: v - {"iizrisk"} for k, v in GRAPH.items()}) if "iizrisk" not in c]
    assert cycles == [], f"import cycles: {cycles}"


@pytest.mark.parametrize("module", ["iizrisk.store", "iizrisk._arrays", "iizrisk.errors", "iizrisk._progress",
                                    "iizrisk._threads", "iizrisk._memory"])
def test_the_ground_floor_imports_nothing_of_the_package(module):
    assert GRAPH[module] == set()


def test_io_only_reads():
    from iizrisk import store

    writers = {n for n in store.__all__ if n.startswith("write_")}
    tree = ast.parse((SRC / "io.py").read_text(encoding="utf-8"))
    taken = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and (node.module or "").endswith("store") for a in node.names}
    assert not taken & writers, f"io imports writers {sorted(taken & writers)}: writing belongs to iizrisk.store"


#: the rules' floors: a module may import from its own floor and those below, never from above
FLOORS = {
    "iizrisk._time": 0, "iizrisk._checks": 0, "iizrisk._html": 0, "iizrisk._arrays": 0, "iizrisk._threads": 0, "iizrisk._memory": 0, "iizrisk._files": 0, "iizrisk.errors": 0, "iizrisk.store": 0, "iizrisk._texts": 0,
    "iizrisk.spells": 1, "iizrisk.view": 2, "iizrisk.flags": 2, "iizrisk.outcomes": 2, "iizrisk.features": 3,
    "iizrisk.model": 4, "iizrisk.explain": 5, "iizrisk.worklist": 6, "iizrisk.batch": 7, "iizrisk.cli": 8,
    # reading, settings and the stores stay below the rules; the audit and the card above the model
    "iizrisk.schema": 0, "iizrisk.fairness_rule": 0, "iizrisk.config": 1, "iizrisk.io": 1, "iizrisk.validate": 1,
    "iizrisk.pseudonym": 0, "iizrisk.history": 1, "iizrisk.publish": 1, "iizrisk.snapshots": 4,
    "iizrisk.fairness": 5, "iizrisk.modelcard": 5, "iizrisk.list_fairness": 6,
    "iizrisk.distributed": 0,  # imports only the errors; snapshots and the study import it lazily
}


def _floor(module: str) -> int | None:
    for name, floor in FLOORS.items():
        if module == name or module.startswith(name + "."):
            return floor
    return None


def test_data_flows_one_way_through_the_rules():
    back = []
    for module, deps in GRAPH.items():
        f = _floor(module)
        if f is None:
            continue
        back += [f"{module} -> {d}" for d in deps if (g := _floor(d)) is not None and g > f]
    assert sorted(back) == []
