"""A small convolutional classifier for MNIST-sized images."""

from __future__ import annotations

import torch
from torch import nn

from manifold_lab._validation import check_image_batch, check_positive_int
from manifold_lab.models._activations import make_activation
from manifold_lab.models.init import materialize
from manifold_lab.models.pooling import AvgPool2x2

__all__ = ["SmallCNN", "CHANNELS"]

#: Default channels of the two conv blocks, and the width of the hidden linear layer.
CHANNELS, _FC = (32, 64), 128
#: Each conv block halves the spatial size; images must survive two halvings.
_MIN_IMAGE_SIZE = 4


class SmallCNN(nn.Module):
    """``[n, c, s, s] -> [n, C]``: two (conv 3×3 -> act -> 2×2 avg-pool) blocks, then an MLP head.

    Channels ``channels`` (default 32 and 64), hidden width 128. Average pooling and
    the default softplus keep the network C² (Theorem 3.1); ``activation="relu"``
    gives the usual piecewise-linear CNN. The pooling is :class:`~manifold_lab.models.pooling.AvgPool2x2`
    (``nn.AvgPool2d(2)``'s numbers, bitwise, faster on one CPU thread; no parameters,
    so checkpoints are unchanged).

    Parameters
    ----------
    in_channels : int
        ``c`` (1 for MNIST, 3 for CIFAR).
    n_classes : int
        ``C``.
    image_size : int
        ``s`` (>= 4), the height; odd sizes are floored by the pooling.
    image_width : int, optional
        Width of non-square images (>= 4; e.g. 28 for the 56x28 two-half images of
        ``fmnist_distractor``); default ``image_size``.
    activation : str
        See :class:`manifold_lab.models.MLP`.
    seed : int
        Initialisation seed (>= 0).
    channels : (int, int)
        Channels of the first and second conv block (each >= 1); default
        :data:`CHANNELS` ``(32, 64)``. The cost of a pass grows about with their
        product (the second block dominates): ``(24, 48)`` is 0.56 of the default.

    Examples
    --------
    >>> net = SmallCNN(activation="gelu", channels=(24, 48), seed=0)
    >>> net(torch.zeros(5, 1, 28, 28)).shape
    torch.Size([5, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 10,
        image_size: int = 28,
        *,
        activation: str = "softplus",
        seed: int = 0,
        image_width: int | None = None,
        channels: tuple[int, int] = CHANNELS,
    ) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("n_classes", n_classes)
        check_positive_int("image_size", image_size, minimum=_MIN_IMAGE_SIZE)
        if image_width is not None:
            check_positive_int("image_width", image_width, minimum=_MIN_IMAGE_SIZE)
        make_activation(activation)
        if not isinstance(channels, (tuple, list)) or len(channels) != 2:
            raise ValueError(f"SmallCNN channels must be two numbers (first, second conv block), got {channels!r}")
        conv1, conv2 = (check_positive_int("channels", c) for c in channels)
        self.channels = (conv1, conv2)
        self.in_channels, self.n_classes, self.image_size = in_channels, n_classes, image_size
        self.image_width = image_width
        self.activation, self.seed = activation, seed
        cells = (image_size // 2 // 2) * ((image_width or image_size) // 2 // 2)
        with torch.device("meta"):
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, conv1, 3, padding=1), make_activation(activation),
                AvgPool2x2(),
                nn.Conv2d(conv1, conv2, 3, padding=1), make_activation(activation),
                AvgPool2x2(),
            )
            self.head = nn.Sequential(
                nn.Flatten(), nn.Linear(conv2 * cells, _FC), make_activation(activation),
                nn.Linear(_FC, n_classes),
            )
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_width or self.image_size)
        check_image_batch("SmallCNN", x, expected[0], expected[1:])
        return self.head(self.features(x))

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        config = {"in_channels": self.in_channels, "n_classes": self.n_classes,
                  "image_size": self.image_size, "activation": self.activation, "seed": self.seed}
        if self.image_width is not None:
            config["image_width"] = self.image_width
        if self.channels != CHANNELS:  # default omitted: older configs read the same
            config["channels"] = list(self.channels)
        return config
