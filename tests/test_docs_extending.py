"""docs/extending.md: every Python block runs, in order, as a user would paste them."""

import re
from pathlib import Path

import pytest

from manifold_lab.experiments import PRESETS
from manifold_lab.experiments.kinds import KINDS
from manifold_lab.experiments.metric_fields import _FIELDS
from manifold_lab.training.objectives.registry import _REGISTRY

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture
def restored_registries():
    saved = [(reg, dict(reg)) for reg in (KINDS, _FIELDS, _REGISTRY, PRESETS)]
    yield
    for reg, copy in saved:
        reg.clear()
        reg.update(copy)


def test_every_example_in_extending_md_runs(restored_registries):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 5  # manifold, data kind, regulariser, metric, preset
    namespace: dict = {"__name__": "extending_md"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)
    assert "vmf_circle" in KINDS and "logit_penalty" in _REGISTRY and "grad_norm" in _FIELDS


def test_the_registries_are_restored():
    assert "vmf_circle" not in KINDS and "logit_penalty" not in _REGISTRY
    assert "grad_norm" not in _FIELDS and "toy_circle" not in PRESETS
