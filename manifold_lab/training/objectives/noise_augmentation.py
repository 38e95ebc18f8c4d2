"""Training on Gaussian-noised inputs (the paper's "randomized smoothing" training)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from manifold_lab._validation import check_generator
from manifold_lab.training.objectives.base import Logs, Objective, accuracy, check_weight
from manifold_lab.training.objectives.registry import register_objective

__all__ = ["NoiseAugmentation"]


@register_objective
class NoiseAugmentation(Objective):
    r"""Cross-entropy on noisy inputs: ``mean_i ℓ(z(x_i + u_i), y_i)``, ``u_i ~ N(0, σ² I)``.

    A fresh draw per example on every call (every batch), from ``generator``.
    This is the base-classifier training of Cohen et al.'s randomized smoothing;
    :class:`manifold_lab.training.SmoothedClassifier` turns the trained model
    into the smoothed classifier with a certified L2 radius.

    Parameters
    ----------
    noise_std : float
        ``σ`` >= 0 (0 is plain cross-entropy).

    Logs ``ce`` and ``acc``, both on the noisy batch.
    """

    name = "noise_augmentation"
    regularizer = "noise_augmentation"
    strength_parameter = "noise_std"
    strength_meaning = "std of the Gaussian noise added to training inputs"
    relative_cost = 1.0

    def __init__(self, noise_std: float) -> None:
        self.noise_std = check_weight("noise_std", noise_std)

    def __call__(self, model, x, y, *, generator=None) -> tuple[torch.Tensor, Logs]:
        check_generator(generator, x.device)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        logits = model(x + self.noise_std * noise)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": float(loss.detach()), "acc": accuracy(logits, y)}

    def config(self) -> dict:
        return {"name": self.name, "noise_std": self.noise_std}
