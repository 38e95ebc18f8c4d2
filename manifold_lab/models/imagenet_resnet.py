"""ImageNet ResNet-18 and ResNet-50 (He et al. 2016) with torchvision's parameter names.

Written here (torchvision is not a dependency); the module tree matches
``torchvision.models.resnet18/resnet50`` (v1.5: the stride of a bottleneck sits on
its 3×3 conv), so torchvision-style checkpoints — torchvision's own, MadryLab
``robustness`` ImageNet models, RobustBench's ImageNet ``Salman2020Do_R18/R50``,
``Engstrom2019Robustness``, ``Wong2020Fast`` — load with ``load_state_dict``:

    conv1 (7×7/2, no bias), bn1, relu, maxpool (3×3/2)
    layer{1..4}.{j}: BasicBlock   conv1, bn1, conv2, bn2, [downsample.0 conv 1×1, downsample.1 BN]
                     Bottleneck   conv1 1×1, bn1, conv2 3×3 (stride), bn2, conv3 1×1 (×4), bn3, [downsample]
    avgpool (global), fc

Inputs ``[n, 3, h, w]`` at any size (224 px for ImageNet), as the checkpoint
expects them (see ``manifold_lab.training.user_checkpoint`` for input normalisation).
"""

from __future__ import annotations

import torch
from torch import nn

from manifold_lab._validation import check_image_batch, check_positive_int
from manifold_lab.models.init import materialize

__all__ = ["ImageNetResNet", "resnet18_imagenet", "resnet50"]

#: Stage widths (before a bottleneck's ×4 expansion) and first-block strides.
_WIDTHS, _STRIDES = (64, 128, 256, 512), (1, 2, 2, 2)
#: Blocks per stage and block kind of the two depths.
_DEPTHS = {18: ((2, 2, 2, 2), "basic"), 50: ((3, 4, 6, 3), "bottleneck")}
_EXPANSION = {"basic": 1, "bottleneck": 4}


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _downsample(c_in, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class _Bottleneck(nn.Module):
    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * _EXPANSION["bottleneck"]
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.downsample = _downsample(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ImageNetResNet(nn.Module):
    """``[n, c, h, w] -> [n, C]``: torchvision's ResNet of the given depth (18 or 50).

    Parameters
    ----------
    depth : int
        18 (basic blocks) or 50 (bottlenecks).
    in_channels : int
    n_classes : int
        1000 for ImageNet.
    seed : int
        Initialisation seed (>= 0) of the random weights a checkpoint replaces.
    """

    def __init__(self, depth: int = 18, in_channels: int = 3, n_classes: int = 1000, *, seed: int = 0) -> None:
        super().__init__()
        if depth not in _DEPTHS:
            raise ValueError(f"ImageNetResNet depth must be one of {sorted(_DEPTHS)}, got {depth}")
        check_positive_int("in_channels", in_channels)
        check_positive_int("n_classes", n_classes)
        self.depth, self.in_channels, self.n_classes, self.seed = depth, in_channels, n_classes, seed
        counts, kind = _DEPTHS[depth]
        block_cls = _BasicBlock if kind == "basic" else _Bottleneck
        with torch.device("meta"):
            self.conv1 = nn.Conv2d(in_channels, _WIDTHS[0], 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(_WIDTHS[0])
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            c_in = _WIDTHS[0]
            for i, (n_blocks, width, stride) in enumerate(zip(counts, _WIDTHS, _STRIDES), start=1):
                blocks = []
                for j in range(n_blocks):
                    blocks.append(block_cls(c_in, width, stride if j == 0 else 1))
                    c_in = width * _EXPANSION[kind]
                setattr(self, f"layer{i}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c_in, n_classes)
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(f"ResNet-{self.depth}", x, self.in_channels)
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(self.avgpool(out).flatten(1))

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"depth": self.depth, "in_channels": self.in_channels, "n_classes": self.n_classes,
                "seed": self.seed}


def resnet18_imagenet(n_classes: int = 1000, *, seed: int = 0) -> ImageNetResNet:
    """torchvision's ``resnet18`` layout (random weights from ``seed``)."""
    return ImageNetResNet(18, n_classes=n_classes, seed=seed)


def resnet50(n_classes: int = 1000, *, seed: int = 0) -> ImageNetResNet:
    """torchvision's ``resnet50`` layout (random weights from ``seed``)."""
    return ImageNetResNet(50, n_classes=n_classes, seed=seed)
