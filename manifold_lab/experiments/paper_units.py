"""The paper's batch-level regulariser strengths in the library's per-example units.

The paper's released CIFAR-10 code (docs/theory.md, "The paper's image protocols") sets
two strengths at the level of a whole batch of ``B`` images; the library's
objectives (``training.objectives``) are batch-size independent. The maps, with
``l_i`` the cross-entropy of example ``i`` and ``g_i = grad_{x_i} l_i``:

- **Gradient norm.** The paper penalises ``1e5 c ||grad_X mean_j l_j||^2 / B``,
  where ``X`` is the whole batch. ``grad_{x_i} mean_j l_j = g_i / B``, so the
  penalty is ``1e5 c / B^3 sum_i ||g_i||^2 = (1e5 c / B^2) mean_i ||g_i||^2``:
  ``GradientNorm(weight=lam)``, whose penalty is ``lam mean_i ||g_i||^2``, equals
  it for ``lam = 1e5 c / B^2`` (:func:`gradient_norm_weight`; 6.10 c at B = 128).
- **PGD-L2.** The paper's random start, step normalisation and projection take one
  L2 norm over the whole batch, so its ``eps`` is a budget shared by ``B`` images;
  spread evenly, each image gets ``eps / sqrt(B)`` (``||X||^2 = sum_i ||x_i||^2``):
  :func:`pgd_eps` (``eps / 11.3`` at B = 128), the library's per-example radius.

Smoothness weights (logit change at sigma = 0.1) and noise-augmentation sigmas
are per-example means / per-pixel standard deviations in both, and map to
themselves.
"""

from __future__ import annotations

import math

from manifold_lab.training.objectives.base import check_weight

__all__ = ["PAPER_BATCH_SIZE", "PAPER_GRADIENT_NORM_SCALE", "gradient_norm_weight", "pgd_eps"]

#: Batch size of the paper's CIFAR-10 training.
PAPER_BATCH_SIZE = 128
#: The constant factor of the paper's gradient-norm penalty.
PAPER_GRADIENT_NORM_SCALE = 1e5


def gradient_norm_weight(c: float, batch_size: int = PAPER_BATCH_SIZE) -> float:
    """``GradientNorm`` weight equal to the paper's gradient-norm strength ``c``:
    ``1e5 c / B^2`` (module docstring)."""
    return PAPER_GRADIENT_NORM_SCALE * check_weight("c", c) / batch_size ** 2


def pgd_eps(eps_batch: float, batch_size: int = PAPER_BATCH_SIZE) -> float:
    """Per-example L2 radius of the paper's batch-level PGD budget: ``eps_batch / sqrt(B)``."""
    return check_weight("eps_batch", eps_batch) / math.sqrt(batch_size)
