"""A classifier behind a fixed per-channel input normalisation: ``model((x − mean) / std)``."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from manifold_lab._validation import check_finite, check_image_batch, check_positive

__all__ = ["Normalized"]


class Normalized(nn.Module):
    """``[n, c, h, w] in [0, 1] -> model((x − mean[c]) / std[c])``.

    Lets a model trained on normalised inputs be measured, attacked and
    differentiated in the [0, 1] pixel space every metric of the library uses
    (gradients are then with respect to pixels, as the paper's).

    Parameters
    ----------
    model : nn.Module
    mean, std : sequence of float or Tensor, ``c`` entries each
        Per-channel mean and standard deviation (``std > 0``), any shape that
        holds ``c`` numbers (``[c]``, ``[c, 1, 1]``, ``[1, c, 1, 1]``).
    """

    def __init__(self, model: nn.Module, mean: Sequence[float] | torch.Tensor,
                 std: Sequence[float] | torch.Tensor) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.shape != std_t.shape or mean_t.numel() == 0:
            raise ValueError(f"mean and std need the same number (>= 1) of entries, got {mean_t.numel()} "
                             f"and {std_t.numel()}")
        check_finite("mean", mean_t)
        check_positive("std", std_t)
        self.model = model
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch("Normalized", x, self.mean.shape[1])
        return self.model((x - self.mean.to(x)) / self.std.to(x))
