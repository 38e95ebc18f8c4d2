"""The package's import structure: no import cycles, and no data kind that reaches
into another kind's private names (each kind shares through ``kinds.images``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "manifold_lab"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every ``import`` in the file (type-checking blocks and function bodies
    included): ``(module, names)``; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((base, [alias.name for alias in node.names]))
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, names in _imports(path):
            if not target.startswith("manifold_lab"):
                continue
            # "from package import submodule" is an edge to the submodule.
            hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            if hits:
                graph[name].update(hits)
            elif target in modules:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    """Module-level, type-checking and deferred (in-function) imports all count: a
    deferred import only hides a cycle (e.g. the former plots <-> image_plots)."""
    cycles = _cycles(_graph())
    assert cycles == [], f"import cycles: {cycles}"


def test_the_finder_sees_a_cycle():
    """The check can fail: a two-module cycle is reported."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


@pytest.mark.parametrize("path", sorted((ROOT / "experiments" / "kinds").glob("*.py")), ids=lambda p: p.name)
def test_kinds_import_no_private_names_of_other_kinds(path):
    kinds = {p.stem for p in (ROOT / "experiments" / "kinds").glob("*.py")}
    shared = {"__init__", "registry", "images", "_fitted_images", "exact"}
    for target, names in _imports(path):
        mod = target.rpartition(".")[2]
        if target.startswith("manifold_lab.experiments.kinds.") and mod in kinds - shared and mod != path.stem:
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{path.name} imports private {private} from kind module {mod}"
