"""A classifier behind a fixed per-channel input normalisation: ``model((clamp(x) − mean) / std)``.

``NORMALIZATIONS`` names the normalisers users' checkpoints were trained behind:
``cifar10`` (the CIFAR-10 training-set channel statistics RobustBench's entries
use), ``imagenet`` (torchvision's), ``half`` (mean = std = 0.5, i.e. ``2x − 1``:
the input map of ``Hendrycks2019Using``'s ``forward``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# Named ``(mean, std)`` per channel (RGB); plain data, torch-free for ``run evaluate``'s argument checks.
from manifold_lab._evaluate_index import NORMALIZATIONS
from manifold_lab._validation import check_finite, check_image_batch, check_positive

__all__ = ["Normalized", "NORMALIZATIONS"]


class Normalized(nn.Module):
    """``[n, c, h, w] in [0, 1] -> model((x − mean[c]) / std[c])``, optionally clamping ``x`` to [0, 1] first.

    Lets a model trained on normalised inputs be measured, attacked and
    differentiated in the [0, 1] pixel space every metric of the library uses
    (gradients are then with respect to pixels, as the paper's).

    Parameters
    ----------
    model : nn.Module
    mean, std : sequence of float or Tensor, ``c`` entries each
        Per-channel mean and standard deviation (``std > 0``), any shape that
        holds ``c`` numbers (``[c]``, ``[c, 1, 1]``, ``[1, c, 1, 1]``).
    clamp : bool
        Clamp the inputs to [0, 1] before normalising, as MadryLab ``robustness``'s
        ``InputNormalize`` does: ``model((clamp(x, 0, 1) − mean) / std)``. It matters
        for inputs outside [0, 1] (noisy images of Def. 1): there the network sees
        the clamped pixel and the input gradient of a clamped pixel is 0.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float] | torch.Tensor,
                 std: Sequence[float] | torch.Tensor, *, clamp: bool = False) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.shape != std_t.shape or mean_t.numel() == 0:
            raise ValueError(f"mean and std need the same number (>= 1) of entries, got {mean_t.numel()} "
                             f"and {std_t.numel()}")
        check_finite("mean", mean_t)
        check_positive("std", std_t)
        self.model, self.clamp = model, bool(clamp)
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch("Normalized", x, self.mean.shape[1])
        if self.clamp:
            x = x.clamp(0.0, 1.0)
        return self.model((x - self.mean.to(x)) / self.std.to(x))
