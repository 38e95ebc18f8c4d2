"""Wide ResNet-28-10 (Zagoruyko & Komodakis 2016), with RobustBench's parameter names.

The layout is RobustBench's ``model_zoo/architectures/wide_resnet.py``
(``WideResNet(depth, widen_factor, sub_block1)``), the architecture of most of
its CIFAR-10 Linf/L2 entries (e.g. ``Standard``, ``Carmon2019Unlabeled``,
``Sehwag2020Hydra``, ``Wang2020Improving``, ``Hendrycks2019Using``, the WRN-34-10
ones), so those checkpoints load with ``load_state_dict`` as they are:

    conv1                                      3→16, 3×3, no bias
    block{1,2,3}.layer.{0..3}.bn1, conv1, bn2, conv2, [convShortcut]
    [sub_block1.layer.{0..3}...]               a copy of block1's shape (``sub_block1=True``)
    bn1                                        final BatchNorm
    fc                                         640→C

widths ``16·k·(1, 2, 4)`` with ``k = 10`` and ``(depth − 4)/6 = 4`` blocks per
group (strides 1, 2, 2). A block whose input and output widths differ
pre-activates its input once and feeds it to both ``conv1`` and the 1×1
``convShortcut``; otherwise the skip is the identity:

    equal:      out = conv2(relu(bn2(conv1(relu(bn1(x)))))) + x
    not equal:  a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + convShortcut(a)

``sub_block1`` (RobustBench's ``sub_block1=True``, from the TRADES code base that
``Carmon2019Unlabeled``, ``Sehwag2020Hydra``, ``Wang2020Improving`` and others were
trained with) is a second group shaped like ``block1`` that holds weights but is
never called in ``forward``: upstream builds it only so the files load, and so does
this class; the outputs do not depend on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from manifold_lab._validation import check_image_batch, check_positive_int
from manifold_lab.models.init import materialize

__all__ = ["WideResNet"]

#: Width of the stem and of the three groups before widening (the paper's 16, 32, 64).
_STEM, _GROUP_WIDTHS, _STRIDES = 16, (16, 32, 64), (1, 2, 2)


class _WideBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.equal = c_in == c_out
        if not self.equal:
            self.convShortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + (x if self.equal else self.convShortcut(a))


class _Group(nn.Module):
    """RobustBench's ``NetworkBlock``: the blocks live under ``.layer``."""

    def __init__(self, n_blocks: int, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[_WideBlock(c_in if j == 0 else c_out, c_out, stride if j == 0 else 1)
                                     for j in range(n_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """``[n, c, 32, 32] -> [n, C]``: RobustBench's WideResNet (default 28-10).

    Parameters
    ----------
    in_channels : int
    n_classes : int
    depth : int
        ``6·N + 4`` (28 → 4 blocks per group).
    widen_factor : int
        ``k`` (10).
    seed : int
        Initialisation seed (>= 0) of the random weights a checkpoint replaces.
    sub_block1 : bool
        Also hold RobustBench's unused ``sub_block1`` group (module docstring).

    Notes
    -----
    The head averages the final 8×8 map (``avg_pool2d(out, 8)``): 32×32 inputs.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, *, depth: int = 28, widen_factor: int = 10,
                 seed: int = 0, sub_block1: bool = False) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("n_classes", n_classes)
        check_positive_int("widen_factor", widen_factor)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6N + 4 with N >= 1 (e.g. 28), got {depth}")
        self.in_channels, self.n_classes, self.depth, self.widen_factor = in_channels, n_classes, depth, widen_factor
        self.seed, self.sub_block1 = seed, bool(sub_block1)
        n_blocks = (depth - 4) // 6
        with torch.device("meta"):
            self.conv1 = nn.Conv2d(in_channels, _STEM, 3, stride=1, padding=1, bias=False)
            c_in = _STEM
            for i, (w, stride) in enumerate(zip(_GROUP_WIDTHS, _STRIDES), start=1):
                setattr(self, f"block{i}", _Group(n_blocks, c_in, w * widen_factor, stride))
                if i == 1 and sub_block1:  # after block1, as upstream registers it (same key order)
                    self.sub_block1 = _Group(n_blocks, _STEM, w * widen_factor, stride)
                c_in = w * widen_factor
            self.bn1 = nn.BatchNorm2d(c_in)
            self.fc = nn.Linear(c_in, n_classes)
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch("WideResNet", x, self.in_channels, (32, 32))
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.avg_pool2d(F.relu(self.bn1(out)), 8)
        return self.fc(out.flatten(1))

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "depth": self.depth,
                "widen_factor": self.widen_factor, "seed": self.seed, "sub_block1": self.sub_block1}
