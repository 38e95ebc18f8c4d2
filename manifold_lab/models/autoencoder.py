"""A small convolutional autoencoder for 28x28 / 32x32 images (learned tangent spaces)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from manifold_lab._validation import check_positive_int
from manifold_lab.models._activations import check_smooth_activation, make_activation
from manifold_lab.models.init import materialize

__all__ = ["ConvAutoencoder", "check_image_shape"]

#: The encoder halves the image twice, so sides must be multiples of this.
SIDE_MULTIPLE = 4
#: Kernel, stride and padding of the (transposed) convolutions: each halves / doubles a side.
_KERNEL, _STRIDE, _PAD = 4, 2, 1


def check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(c, h, w)`` with ``h, w`` positive multiples of 4, else a one-line ``ValueError``."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[0] < 1 or any(s < SIDE_MULTIPLE or s % SIDE_MULTIPLE for s in shape[1:]):
        raise ValueError(f"image_shape must be (c, h, w) with h and w multiples of {SIDE_MULTIPLE} "
                         f"(28 or 32 px), got {tuple(image_shape)}")
    return shape


class ConvAutoencoder(nn.Module):
    """``encoder: [n, c, h, w] -> [n, k]``, ``decoder: [n, k] -> [n, c, h, w]``.

    Encoder: two stride-2 4x4 convolutions (``width``, ``2 width`` channels), then a
    linear map to the latent. Decoder: the mirror image (linear, two stride-2
    transposed convolutions), with a linear output. Smooth activations by default
    (SiLU), so the decoder Jacobian, whose column space is the learned tangent
    space, is continuous in the latent.

    Parameters
    ----------
    image_shape : (c, h, w)
        ``h, w`` multiples of 4.
    latent_dim : int
        ``k >= 1``.
    width : int
        Channels of the first convolution.
    activation : str
        One of ``SMOOTH_ACTIVATIONS`` (tangent spaces need a differentiable decoder).
    seed : int
        Initialisation seed.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 8, *, width: int = 32,
                 activation: str = "silu", seed: int = 0) -> None:
        super().__init__()
        c, h, w = self.image_shape = check_image_shape(image_shape)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.width = check_positive_int("width", width)
        check_smooth_activation(activation)
        self.activation, self.seed = activation, seed
        inner = (2 * width, h // SIDE_MULTIPLE, w // SIDE_MULTIPLE)
        flat = inner[0] * inner[1] * inner[2]
        with torch.device("meta"):
            self.encoder = nn.Sequential(
                nn.Conv2d(c, width, _KERNEL, _STRIDE, _PAD), make_activation(activation),
                nn.Conv2d(width, 2 * width, _KERNEL, _STRIDE, _PAD), make_activation(activation),
                nn.Flatten(), nn.Linear(flat, latent_dim),
            )
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, flat), make_activation(activation), nn.Unflatten(1, inner),
                nn.ConvTranspose2d(2 * width, width, _KERNEL, _STRIDE, _PAD), make_activation(activation),
                nn.ConvTranspose2d(width, c, _KERNEL, _STRIDE, _PAD),
            )
        materialize(self, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``decoder(encoder(x))``: ``[n, c, h, w] -> [n, c, h, w]``."""
        return self.decoder(self.encoder(x))

    def config(self) -> dict:
        """JSON-able constructor arguments."""
        return {"image_shape": list(self.image_shape), "latent_dim": self.latent_dim, "width": self.width,
                "activation": self.activation, "seed": self.seed}
