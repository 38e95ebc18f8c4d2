"""Pre-activation ResNet-18 (He et al. 2016, "Identity mappings"), with RobustBench's parameter names.

The layout is RobustBench's ``model_zoo/architectures/resnet.py`` (``PreActResNet18``),
so its CIFAR-10 checkpoints (e.g. ``Wong2020Fast``, ``Rice2020Overfitting``'s
PreAct variant) load with ``load_state_dict`` as they are:

    conv1                                3→64, 3×3, stride 1, no bias
    layer{1..4}.{0,1}.bn1, conv1, bn2, conv2, [shortcut.0]   pre-activation blocks
    bn                                   final BatchNorm before the pooling
    linear                               512→C

A block computes ``out = relu(bn1(x)); s = shortcut(out) or x;
out = conv2(relu(bn2(conv1(out)))) + s``; the 1×1 ``shortcut`` conv (no bias,
no BatchNorm) exists when the stride or the width changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from manifold_lab._validation import check_image_batch, check_positive_int
from manifold_lab.models.init import materialize

__all__ = ["PreActResNet18"]

#: Blocks per stage, stage widths and first-block strides of the 18-layer network.
_BLOCKS = (2, 2, 2, 2)
_WIDTHS = (64, 128, 256, 512)
_STRIDES = (1, 2, 2, 2)


class _PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + skip


class PreActResNet18(nn.Module):
    """``[n, c, 32, 32] -> [n, C]``: RobustBench's PreActResNet-18 (inputs as the checkpoint expects).

    Parameters
    ----------
    in_channels : int
        ``c`` (3 for CIFAR).
    n_classes : int
        ``C`` (10 for CIFAR-10).
    seed : int
        Initialisation seed (>= 0) of the random weights a checkpoint replaces.

    Notes
    -----
    The head averages the last 4×4 feature map (``avg_pool2d(out, 4)``), so the
    network expects 32×32 inputs, as RobustBench's does.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, *, seed: int = 0) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("n_classes", n_classes)
        self.in_channels, self.n_classes, self.seed = in_channels, n_classes, seed
        with torch.device("meta"):
            self.conv1 = nn.Conv2d(in_channels, _WIDTHS[0], 3, stride=1, padding=1, bias=False)
            c_in = _WIDTHS[0]
            for i, (n_blocks, c_out, stride) in enumerate(zip(_BLOCKS, _WIDTHS, _STRIDES), start=1):
                blocks = []
                for j in range(n_blocks):
                    blocks.append(_PreActBlock(c_in, c_out, stride if j == 0 else 1))
                    c_in = c_out
                setattr(self, f"layer{i}", nn.Sequential(*blocks))
            self.bn = nn.BatchNorm2d(c_in)
            self.linear = nn.Linear(c_in, n_classes)
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch("PreActResNet18", x, self.in_channels, (32, 32))
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        out = F.avg_pool2d(F.relu(self.bn(out)), 4)
        return self.linear(out.flatten(1))

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "seed": self.seed}
