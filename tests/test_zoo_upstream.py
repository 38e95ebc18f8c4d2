"""Users' zoo checkpoints load to the upstream networks' outputs (fixtures written by the upstream code).

``tests/fixtures/upstream/make_fixtures.py`` ran once in a throwaway environment with
RobustBench 1.1.1, MadryLab ``robustness`` 1.2.1 and torchvision 0.29 and recorded, for
each layout, the keys of the file as upstream writes it and the upstream network's
logits with weights filled by ``fill.key_tensor`` (by key name, so this test fills
bit-identical weights without any weight file). Here the file is rebuilt from the
record, loaded by ``load_user_checkpoint`` in every documented way, and its logits
compared with upstream's, on clean inputs and on inputs with N(0, 1) noise (outside
[0, 1], where MadryLab's clamp matters).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest
import torch

from manifold_lab.models import build_architecture
from manifold_lab.models.zoo_layout import layout_options
from manifold_lab.training import load_user_checkpoint
from manifold_lab.training.zoo_entries import ZOO_ENTRIES

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
sys.path.insert(0, str(FIXTURES))
from fill import key_tensor  # noqa: E402

#: Relative tolerance on logits: float32 convolutions in a different order (max |diff| / max |logit|).
RTOL = 1e-4

LAYOUTS = json.loads((FIXTURES / "zoo_layouts.json").read_text())
ZOO_KEYS = json.loads((FIXTURES / "zoo_keys.json").read_text())


@functools.cache
def _tensors() -> dict:
    return torch.load(FIXTURES / "zoo_tensors.pt", weights_only=True)


def build_file(spec: dict) -> object:
    """The object upstream saves for a layout record (weights from ``key_tensor``)."""
    t, name = _tensors(), spec["tensors"]
    net = {}
    for key, shape, dtype in spec["keys"]:
        fixed = t.get(f"{name}/fixed/{key}")
        if key in spec["counters"]:
            net[key] = torch.tensor(spec["counters"][key], dtype=getattr(torch, dtype))
        else:
            net[key] = fixed.clone() if fixed is not None else key_tensor(key, tuple(shape))
    flat = {spec["prefix"] + k: v for k, v in net.items()}
    for prefix in spec["copies"]:
        flat |= {prefix + k: v for k, v in net.items()}
    flat |= {k: t[f"{name}/extra/{k}"] for k in spec["extra"]}
    return flat if spec["wrap"] is None else {spec["wrap"]: flat, "epoch": 1}


def relative_difference(spec: dict, call: dict, path: Path) -> float:
    """max |ours − upstream| / max |upstream| over clean and noisy inputs."""
    t, name = _tensors(), spec["tensors"]
    model = load_user_checkpoint(path, **call).model
    worst = 0.0
    with torch.no_grad():
        for suffix in ("", "_noisy"):
            ours = model(t[f"inputs/{spec['inputs']}{suffix}"])
            ref = t[f"{name}/logits{suffix}"]
            worst = max(worst, float((ours - ref).abs().max() / ref.abs().max()))
    return worst


def _marks(layout: str, i: int) -> tuple:
    """ResNet-50 layouts and second ways of loading a layout run with ``-m slow`` (seconds each)."""
    return (pytest.mark.slow,) if i > 0 or "resnet50" in layout else ()


CASES = [pytest.param(layout, i, id=f"{LAYOUTS[layout]['tensors']}-{call.get('normalization', 'auto')}-"
                                    f"{call['arch'].replace('/', ':')}", marks=_marks(layout, i))
         for layout in LAYOUTS for i, call in enumerate(LAYOUTS[layout]["ours"])]


@pytest.mark.parametrize("layout, i", CASES)
def test_layout_loads_to_the_upstream_logits(tmp_path, layout, i):
    spec = LAYOUTS[layout]
    path = tmp_path / "ckpt.pt"
    torch.save(build_file(spec), path)
    assert relative_difference(spec, spec["ours"][i], path) <= RTOL


def test_madrylab_without_clamp_differs_on_noisy_inputs(tmp_path):
    """The control: with clamp=False the noisy-input logits are far from MadryLab's (the clamp is needed)."""
    spec = LAYOUTS["MadryLab robustness resnet18 (AttackerModel, InputNormalize clamps)"]
    path = tmp_path / "ckpt.pt"
    torch.save(build_file(spec), path)
    assert relative_difference(spec, {"arch": "resnet18_imagenet", "clamp": False}, path) > 100 * RTOL


def test_hendrycks_without_its_normalisation_differs(tmp_path):
    spec = LAYOUTS["robustbench Hendrycks2019UsingNet (2x - 1 in forward), WRN-10-2"]
    path = tmp_path / "ckpt.pt"
    torch.save(build_file(spec), path)
    assert relative_difference(spec, {"arch": "wideresnet", "normalization": "none"}, path) > 100 * RTOL


@functools.cache
def _our_keys(arch: str, options: tuple) -> dict:
    net = build_architecture(arch, **dict(options))
    return {k: list(v.shape) for k, v in net.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO_ENTRIES))
def test_zoo_entry_has_the_upstream_keys_and_shapes(name):
    """Each named entry's architecture (with the layout read from the keys) has upstream's exact keys and shapes."""
    if name not in ZOO_KEYS["entries"]:
        pytest.fail(f"{name} has no upstream record: rerun tests/fixtures/upstream/make_fixtures.py")
    upstream = dict((k, list(s)) for k, s in ZOO_KEYS["layouts"][ZOO_KEYS["entries"][name]["keys"]])
    arch = ZOO_ENTRIES[name].arch
    options = layout_options(arch, {k: tuple(s) for k, s in upstream.items()})
    assert _our_keys(arch, tuple(sorted(options.items()))) == upstream


def test_wrn_entries_with_and_without_sub_block1_have_the_upstream_keys():
    """The fast default-suite share of the check above: Hendrycks2019Using (no sub_block1) and Carmon2019Unlabeled."""
    for name in ("cifar10/Hendrycks2019Using", "cifar10/Carmon2019Unlabeled"):
        test_zoo_entry_has_the_upstream_keys_and_shapes(name)


def test_every_entry_was_recorded():
    assert set(ZOO_KEYS["entries"]) == set(ZOO_ENTRIES)


def parity_table(tmp: Path) -> list[tuple[str, str, float, float]]:
    """``(layout, call, max |diff|, relative)`` for every layout and call (the README's table)."""
    rows = []
    for layout, spec in LAYOUTS.items():
        path = tmp / f"{spec['tensors']}.pt"
        torch.save(build_file(spec), path)
        t = _tensors()
        for call in spec["ours"]:
            model = load_user_checkpoint(path, **call).model
            with torch.no_grad():
                diffs = [(model(t[f"inputs/{spec['inputs']}{s}"]) - t[f"{spec['tensors']}/logits{s}"]).abs().max()
                         for s in ("", "_noisy")]
            rows.append((layout, json.dumps(call), float(max(diffs)), relative_difference(spec, call, path)))
        path.unlink()
    return rows


if __name__ == "__main__":  # python tests/test_zoo_upstream.py: print the table
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for row in parity_table(Path(d)):
            print(f"| {row[0]} | `{row[1]}` | {row[2]:.2e} | {row[3]:.2e} |")
