"""Plain cross-entropy (the unregularised baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from manifold_lab.training.objectives.base import Logs, Objective, accuracy
from manifold_lab.training.objectives.registry import register_objective

__all__ = ["CrossEntropy"]


@register_objective
class CrossEntropy(Objective):
    """``mean_i −log softmax(z(x_i))_{y_i}``.

    Logs ``ce`` (the loss) and ``acc`` (batch accuracy).
    """

    name = "cross_entropy"
    regularizer = "none"
    strength_meaning = "no regulariser"
    relative_cost = 1.0

    def __call__(self, model, x, y, *, generator=None) -> tuple[torch.Tensor, Logs]:
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": float(loss.detach()), "acc": accuracy(logits, y)}
