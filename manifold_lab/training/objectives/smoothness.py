"""Output smoothness under Gaussian input noise (stability training)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from manifold_lab._validation import check_generator
from manifold_lab.training.objectives.base import Logs, Objective, accuracy, check_weight
from manifold_lab.training.objectives.registry import register_objective

__all__ = ["Smoothness", "SMOOTHNESS_NOISE_STD"]

#: Noise scale of ``make_objective("smoothness", weight)``: the scale of the
#: metrics' default on/off-manifold noise (docs/theory.md prototype, sigma = 0.1), so
#: the penalty acts at the scale that is measured. Its small-noise limit is
#: ``weight * 0.01 * ||J_z||_F^2``: a weight grid 1e-2 .. 1e2 spans effective
#: Jacobian penalties 1e-4 .. 1, from negligible to flattening the model.
SMOOTHNESS_NOISE_STD = 0.1


@register_objective
class Smoothness(Objective):
    r"""Cross-entropy plus the mean squared logit change under Gaussian input noise.

    .. math::
        L = \frac1n \sum_i \ell_i + λ \frac1n \sum_i \|z(x_i + u_i) − z(x_i)\|_2^2,
        \qquad u_i \sim N(0, σ^2 I),

    one fresh draw per example and call. For small ``σ`` the penalty is
    ``σ² ‖J_z(x_i)‖_F²`` to leading order (the Taylor argument of Theorem 3.1),
    so it is a stochastic Jacobian (all-logit) gradient-norm penalty of weight
    ``λσ²``. Both terms are differentiated. Clean and noisy inputs go through
    the model in one concatenated batch (a model with train-mode BatchNorm thus
    normalises them with shared statistics).

    Parameters
    ----------
    weight : float
        ``λ`` >= 0.
    noise_std : float
        ``σ`` >= 0.

    Logs ``ce``, ``logit_change_sq`` (the penalty before ``λ``) and ``acc``.
    """

    name = "smoothness"
    regularizer = "smoothness"
    strength_parameter = "weight"
    strength_meaning = "weight of the squared logit change under Gaussian input noise"
    relative_cost = 2.0  # clean and noisy batch
    default_options = {"noise_std": SMOOTHNESS_NOISE_STD}

    def __init__(self, weight: float, noise_std: float) -> None:
        self.weight = check_weight("weight", weight)
        self.noise_std = check_weight("noise_std", noise_std)

    def __call__(self, model, x, y, *, generator=None) -> tuple[torch.Tensor, Logs]:
        check_generator(generator, x.device)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        out = model(torch.cat([x, x + self.noise_std * noise]))
        logits, noisy = out[: x.shape[0]], out[x.shape[0]:]
        ce = F.cross_entropy(logits, y)
        penalty = (noisy - logits).pow(2).sum(dim=1).mean()
        loss = ce + self.weight * penalty
        return loss, {"ce": float(ce.detach()), "logit_change_sq": float(penalty.detach()), "acc": accuracy(logits, y)}

    def config(self) -> dict:
        return {"name": self.name, "weight": self.weight, "noise_std": self.noise_std}
