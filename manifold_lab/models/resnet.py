"""ResNet-18, CIFAR variant (3×3 stem, no max-pool), for any number of input channels."""

from __future__ import annotations

import torch
from torch import nn

from manifold_lab._validation import check_image_batch, check_positive_int
from manifold_lab.models._activations import make_activation
from manifold_lab.models.init import materialize

__all__ = ["ResNet18"]

#: Basic blocks per stage and the stride of each stage's first block (He et al. 2016).
_BLOCKS = (2, 2, 2, 2)
_STRIDES = (1, 2, 2, 2)


class _BasicBlock(nn.Module):
    """``act(bn(conv(act(bn(conv(x))))) + shortcut(x))``; 1×1 conv shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = make_activation(activation)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for small images: ``[n, c, h, w] -> [n, C]``.

    Stem: 3×3 conv (stride 1) + BatchNorm + activation, no max-pool, so 32×32
    inputs keep 32×32 feature maps in the first stage; four stages of two basic
    blocks with widths ``width × (1, 2, 4, 8)``; global average pooling; linear head.

    Parameters
    ----------
    in_channels : int
        ``c`` (any number: 1 for grey-scale, 3 for RGB).
    n_classes : int
        ``C``.
    width : int
        Channels of the first stage (64 in the standard network; smaller for tests).
    activation : str
        ``"relu"`` (default, the standard network) or a smooth one
        (see :class:`manifold_lab.models.MLP`).
    seed : int
        Initialisation seed (>= 0).

    Notes
    -----
    Contains BatchNorm: train-mode outputs depend on the whole batch. Attacks and
    metrics put it in eval mode (running statistics).
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 10,
        *,
        width: int = 64,
        activation: str = "relu",
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("n_classes", n_classes)
        check_positive_int("width", width)
        make_activation(activation)
        self.in_channels, self.n_classes, self.width = in_channels, n_classes, width
        self.activation, self.seed = activation, seed
        with torch.device("meta"):
            self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(width), make_activation(activation))
            blocks: list[nn.Module] = []
            c_in = width
            for i, (n_blocks, stride) in enumerate(zip(_BLOCKS, _STRIDES)):
                c_out = width * 2 ** i
                for j in range(n_blocks):
                    blocks.append(_BasicBlock(c_in, c_out, stride if j == 0 else 1, activation))
                    c_in = c_out
            self.stages = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c_in, n_classes)
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch("ResNet18", x, self.in_channels)
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "width": self.width,
                "activation": self.activation, "seed": self.seed}
