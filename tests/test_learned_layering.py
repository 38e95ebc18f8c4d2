"""Layering (DESIGN.md): datasets stands alone; learned sits above training, below experiments."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "manifold_lab"


def project_imports(folder):
    for path in sorted((PKG / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("manifold_lab"):
                yield path.name, node.module
            elif isinstance(node, ast.Import):
                yield from ((path.name, a.name) for a in node.names if a.name.startswith("manifold_lab"))


def test_datasets_import_only_themselves():
    found = list(project_imports("datasets"))
    assert found
    for name, mod in found:
        assert mod.startswith("manifold_lab.datasets"), f"{name} imports {mod}"


def test_learned_does_not_import_higher_layers():
    for name, mod in project_imports("learned"):
        assert not mod.startswith(("manifold_lab.experiments", "manifold_lab.run")), f"{name} imports {mod}"
