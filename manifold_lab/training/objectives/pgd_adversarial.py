"""Adversarial training on per-example L2 PGD examples (Madry et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from manifold_lab._validation import check_positive_int
from manifold_lab.training.attacks.pgd import pgd_l2
from manifold_lab.training.objectives.base import Logs, Objective, accuracy, check_weight
from manifold_lab.training.objectives.registry import register_objective

__all__ = ["PGDAdversarial"]


@register_objective
class PGDAdversarial(Objective):
    r"""``mean_i ℓ(z(x_i^{adv}), y_i)`` with ``x^{adv} = pgd_l2(model, x, y, eps, steps, step_size)``.

    The attack runs in eval mode with frozen parameters (see
    :func:`~manifold_lab.training.pgd_l2`): it neither updates BatchNorm
    statistics nor leaves gradients on the parameters, and each example gets its
    own ball of radius ``eps``. Only the final forward pass on ``x^{adv}`` (in
    the model's own mode) carries parameter gradients. Cost: ``steps`` input
    gradients plus one training step.

    Parameters
    ----------
    eps : float
        L2 radius >= 0 (0: plain cross-entropy, no attack is run).
    steps : int
        PGD steps (default 10).
    step_size : float, optional
        Default ``2.5 eps / steps``.
    bounds : (float, float), optional
        Valid input range (e.g. ``(0, 1)`` for images); adversarial inputs are
        clamped into it.

    Logs ``ce`` and ``acc`` on the adversarial batch.
    """

    name = "pgd_l2"
    regularizer = "pgd_l2"
    strength_parameter = "eps"
    strength_meaning = "L2 radius eps of the per-example PGD attack"
    relative_cost = 5.0  # `steps` input gradients per training step

    def __init__(self, eps: float, steps: int = 10, step_size: float | None = None,
                 bounds: tuple[float, float] | None = None) -> None:
        self.eps = check_weight("eps", eps)
        self.steps = check_positive_int("steps", steps)
        self.step_size = None if step_size is None else check_weight("step_size", step_size)
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))

    def __call__(self, model, x, y, *, generator=None) -> tuple[torch.Tensor, Logs]:
        if self.eps > 0:
            x = pgd_l2(model, x, y, self.eps, steps=self.steps, step_size=self.step_size,
                       bounds=self.bounds, generator=generator)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": float(loss.detach()), "acc": accuracy(logits, y)}

    def config(self) -> dict:
        return {"name": self.name, "eps": self.eps, "steps": self.steps, "step_size": self.step_size,
                "bounds": None if self.bounds is None else list(self.bounds)}
