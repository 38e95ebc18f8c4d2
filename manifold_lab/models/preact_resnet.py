"""Pre-activation ResNet-18 (He et al. 2016, "Identity mappings"), with RobustBench's parameter names.

The layouts are RobustBench 1.1.1's ``model_zoo/architectures/resnet.py``
(``PreActResNet(block, [2, 2, 2, 2], bn_before_fc=...)``), in its two variants:

    conv1                                3→64, 3×3, stride 1, no bias
    layer{1..4}.{0,1}.bn1, conv1, bn2, conv2, [shortcut.0]   pre-activation blocks
    [bn]                                 final BatchNorm before the pooling (``bn_before_fc``)
    linear                               512→C

- ``variant="plain"`` — ``PreActResNet18()`` = ``PreActBlock``, no final ``bn``
  (``Wong2020Fast``, ``Andriushchenko2020Understanding``). A block computes
  ``a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + (shortcut(x) or x)``:
  the 1×1 shortcut sees the block's *input*;
- ``variant="v2"`` — ``PreActBlockV2`` with ``bn_before_fc=True``
  (``Rice2020Overfitting`` L2, ``Kireev2021Effectiveness_*``): the shortcut sees the
  pre-activation ``a``, and ``relu(bn(·))`` runs before the pooling.

The 1×1 ``shortcut`` conv (no bias, no BatchNorm) exists when the stride or the
width changes. The two variants have the same keys except ``bn.*``, so
``models.zoo_layout`` picks the variant from a checkpoint's keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from manifold_lab._validation import check_image_batch, check_positive_int
from manifold_lab.models.init import materialize

__all__ = ["PreActResNet18"]

#: The two RobustBench variants: where a block's shortcut reads from, and the final BatchNorm.
VARIANTS = ("plain", "v2")
#: Blocks per stage, stage widths and first-block strides of the 18-layer network.
_BLOCKS = (2, 2, 2, 2)
_WIDTHS = (64, 128, 256, 512)
_STRIDES = (1, 2, 2, 2)


class _PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, shortcut_from_input: bool) -> None:
        super().__init__()
        self.shortcut_from_input = shortcut_from_input
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(x if self.shortcut_from_input else out) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + skip


class PreActResNet18(nn.Module):
    """``[n, c, 32, 32] -> [n, C]``: RobustBench's PreActResNet-18 (inputs as the checkpoint expects).

    ``logits = linear(avg_pool_4(h(layer4..1(conv1(x)))))`` with ``h = relu∘bn`` (v2) or the
    identity (plain).

    Parameters
    ----------
    in_channels : int
        ``c`` (3 for CIFAR).
    n_classes : int
        ``C`` (10 for CIFAR-10).
    seed : int
        Initialisation seed (>= 0) of the random weights a checkpoint replaces.
    variant : {"v2", "plain"}
        RobustBench's block and head (module docstring). The default ``"v2"`` is
        the layout this class had before ``"plain"`` existed, so earlier saved
        configs rebuild the same network.

    Notes
    -----
    The head averages the last 4×4 feature map (``avg_pool2d(out, 4)``), so the
    network expects 32×32 inputs, as RobustBench's does.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, *, seed: int = 0, variant: str = "v2") -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("n_classes", n_classes)
        if variant not in VARIANTS:
            raise ValueError(f"PreActResNet18 variant must be one of {VARIANTS}, got {variant!r}")
        self.in_channels, self.n_classes, self.seed, self.variant = in_channels, n_classes, seed, variant
        with torch.device("meta"):
            self.conv1 = nn.Conv2d(in_channels, _WIDTHS[0], 3, stride=1, padding=1, bias=False)
            c_in = _WIDTHS[0]
            for i, (n_blocks, c_out, stride) in enumerate(zip(_BLOCKS, _WIDTHS, _STRIDES), start=1):
                blocks = []
                for j in range(n_blocks):
                    blocks.append(_PreActBlock(c_in, c_out, stride if j == 0 else 1, variant == "plain"))
                    c_in = c_out
                setattr(self, f"layer{i}", nn.Sequential(*blocks))
            if variant == "v2":
                self.bn = nn.BatchNorm2d(c_in)
            self.linear = nn.Linear(c_in, n_classes)
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch("PreActResNet18", x, self.in_channels, (32, 32))
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        if self.variant == "v2":
            out = F.relu(self.bn(out))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "seed": self.seed,
                "variant": self.variant}
