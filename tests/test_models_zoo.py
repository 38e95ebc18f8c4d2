"""The model-zoo architectures carry their zoo's exact parameter names and shapes.

The expected state_dict layouts are written out here from the published
architecture descriptions (RobustBench's ``resnet.py`` / ``wide_resnet.py``,
torchvision's ``resnet.py``), not read from the modules under test; parameter
counts are the published ones (torchvision's model cards, RobustBench's WRN-28-10).
"""

from __future__ import annotations

import pytest
import torch

from manifold_lab.models import ARCHITECTURES, build_architecture


def _bn(prefix: str, c: int) -> dict:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def preact_resnet18_layout(n_classes=10) -> dict:
    keys = {"conv1.weight": (64, 3, 3, 3)}
    c_in = 64
    for i, (c, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)], start=1):
        for j in range(2):
            p = f"layer{i}.{j}"
            keys |= _bn(f"{p}.bn1", c_in)
            keys[f"{p}.conv1.weight"] = (c, c_in, 3, 3)
            keys |= _bn(f"{p}.bn2", c)
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            if j == 0 and (stride != 1 or c_in != c):
                keys[f"{p}.shortcut.0.weight"] = (c, c_in, 1, 1)
            c_in = c
    keys |= _bn("bn", 512)
    return keys | {"linear.weight": (n_classes, 512), "linear.bias": (n_classes,)}


def wideresnet28_10_layout(n_classes=10) -> dict:
    keys = {"conv1.weight": (16, 3, 3, 3)}
    c_in = 16
    for g, c in enumerate([160, 320, 640], start=1):
        for j in range(4):
            p = f"block{g}.layer.{j}"
            keys |= _bn(f"{p}.bn1", c_in)
            keys[f"{p}.conv1.weight"] = (c, c_in, 3, 3)
            keys |= _bn(f"{p}.bn2", c)
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            if c_in != c:
                keys[f"{p}.convShortcut.weight"] = (c, c_in, 1, 1)
            c_in = c
    keys |= _bn("bn1", 640)
    return keys | {"fc.weight": (n_classes, 640), "fc.bias": (n_classes,)}


def torchvision_resnet_layout(depth: int, n_classes=1000) -> dict:
    keys = {"conv1.weight": (64, 3, 7, 7)} | _bn("bn1", 64)
    counts = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3]}[depth]
    expansion = 1 if depth == 18 else 4
    c_in = 64
    for i, (n, w) in enumerate(zip(counts, [64, 128, 256, 512]), start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            if depth == 18:
                keys[f"{p}.conv1.weight"] = (w, c_in, 3, 3)
                keys |= _bn(f"{p}.bn1", w)
                keys[f"{p}.conv2.weight"] = (w, w, 3, 3)
                keys |= _bn(f"{p}.bn2", w)
            else:
                keys[f"{p}.conv1.weight"] = (w, c_in, 1, 1)
                keys |= _bn(f"{p}.bn1", w)
                keys[f"{p}.conv2.weight"] = (w, w, 3, 3)
                keys |= _bn(f"{p}.bn2", w)
                keys[f"{p}.conv3.weight"] = (4 * w, w, 1, 1)
                keys |= _bn(f"{p}.bn3", 4 * w)
            if j == 0 and (i > 1 or c_in != w * expansion):
                keys[f"{p}.downsample.0.weight"] = (w * expansion, c_in, 1, 1)
                keys |= _bn(f"{p}.downsample.1", w * expansion)
            c_in = w * expansion
    return keys | {"fc.weight": (n_classes, 512 * expansion), "fc.bias": (n_classes,)}


#: arch name -> (expected layout, published parameter count or None, input side).
CASES = {
    "preact_resnet18": (preact_resnet18_layout, None, 32),
    "wideresnet28_10": (wideresnet28_10_layout, 36_479_194, 32),
    "resnet18_imagenet": (lambda: torchvision_resnet_layout(18), 11_689_512, 64),
    "resnet50": (lambda: torchvision_resnet_layout(50), 25_557_032, 64),
}


def test_every_zoo_architecture_is_covered():
    # wideresnet34_10 and wideresnet (any depth/width) are checked against upstream keys in test_zoo_upstream.py
    assert set(CASES) == set(ARCHITECTURES) - {"resnet18", "wideresnet34_10", "wideresnet"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_with_the_zoo_names_and_shapes_loads(name):
    layout_fn, n_params, side = CASES[name]
    layout = layout_fn()
    model = build_architecture(name)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(got) ^ set(layout)) == []
    assert got == layout
    if n_params is not None:
        assert sum(p.numel() for p in model.parameters()) == n_params
    # A state_dict built from the layout alone loads strictly and is used by forward.
    g = torch.Generator().manual_seed(0)
    state = {k: torch.tensor(7) if s == () else torch.ones(s) if k.endswith("running_var")
             else 0.05 * torch.randn(s, generator=g) for k, s in layout.items()}
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.state_dict()["conv1.weight"], state["conv1.weight"])
    out = model.eval()(torch.rand(2, 3, side, side, generator=g))
    assert out.shape == (2, 1000 if "resnet50" in name or "imagenet" in name else 10)
    assert torch.isfinite(out).all()


def test_unknown_architecture_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'.*known"):
        build_architecture("vgg")


def test_inputs_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError, match=r"\[n, 3, 32, 32\]"):
        build_architecture("preact_resnet18")(torch.rand(1, 3, 28, 28))
