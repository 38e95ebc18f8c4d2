"""Input-gradient norm penalty (double backpropagation, Drucker & LeCun 1992)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from manifold_lab.training.objectives.base import Logs, Objective, accuracy, check_weight
from manifold_lab.training.objectives.registry import register_objective

__all__ = ["GradientNorm"]

_TARGETS = ("loss", "logit")


@register_objective
class GradientNorm(Objective):
    r"""Cross-entropy plus the mean squared input-gradient norm of a per-example scalar.

    .. math::
        L = \frac1n \sum_i \ell_i + λ \frac1n \sum_i \|∇_{x_i} s_i\|_2^2,
        \qquad s_i = \ell_i = -\log p(y_i | x_i) \ (\text{of}="loss")
        \ \text{or}\ s_i = z_{y_i}(x_i) \ (\text{of}="logit").

    The gradient is that of each example's *own* scalar (``∇_{x_i} Σ_j s_j``,
    which equals ``∇_{x_i} s_i`` for any model without batch coupling), so the
    penalty is a mean of per-example quantities: it does not depend on the batch
    size, and a batch and the same batch duplicated give the same value. (The
    paper's code differentiated the batch-*mean* loss, a ``1/B`` factor, and
    multiplied by a magic 1e5.) The gradient is built with ``create_graph=True``
    so the penalty is differentiated with respect to the parameters (double
    backprop). One forward pass serves both terms.

    For a linear model ``z = W x + b`` and ``of="loss"``, ``∇_x ℓ = Wᵀ(p − e_y)``.

    Parameters
    ----------
    weight : float
        ``λ`` >= 0.
    of : {"loss", "logit"}
        The differentiated scalar.
    lr_weight : float, optional
        The paper's step-size rule for strong penalties: for ``weight > lr_weight``
        a sweep trains with the learning rate divided by ``weight / lr_weight``
        (:meth:`lr_factor`; the paper's code: ``lr / (c / 0.01)`` for ``c > 0.01``).
        ``None`` (default): the preset's learning rate at every weight.

    Logs ``ce``, ``grad_norm_sq`` (the mean squared norm, before ``λ``) and ``acc``.
    """

    name = "gradient_norm"
    regularizer = "gradient_norm"
    strength_parameter = "weight"
    strength_meaning = "weight of the squared input-gradient norm penalty"
    relative_cost = 3.0  # double backpropagation

    def __init__(self, weight: float, of: str = "loss", lr_weight: float | None = None) -> None:
        self.weight = check_weight("weight", weight)
        if of not in _TARGETS:
            raise ValueError(f"of must be one of {_TARGETS}, got {of!r}")
        self.of = of
        self.lr_weight = None if lr_weight is None else check_weight("lr_weight", lr_weight)
        if self.lr_weight == 0:
            raise ValueError("lr_weight must be > 0 (or None)")

    def lr_factor(self) -> float:
        """``min(1, lr_weight / weight)`` (1 without ``lr_weight``)."""
        if self.lr_weight is None or self.weight <= self.lr_weight:
            return 1.0
        return self.lr_weight / self.weight

    def __call__(self, model, x, y, *, generator=None) -> tuple[torch.Tensor, Logs]:
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            logits = model(x_in)
            per_example = F.cross_entropy(logits, y, reduction="none")
            if self.of == "loss":
                scalar = per_example.sum()
            else:
                scalar = logits.gather(1, y.unsqueeze(1)).sum()
            (grad,) = torch.autograd.grad(scalar, x_in, create_graph=True)
        penalty = grad.flatten(1).pow(2).sum(dim=1).mean()
        ce = per_example.mean()
        loss = ce + self.weight * penalty
        return loss, {"ce": float(ce.detach()), "grad_norm_sq": float(penalty.detach()), "acc": accuracy(logits, y)}

    def config(self) -> dict:
        extra = {} if self.lr_weight is None else {"lr_weight": self.lr_weight}
        return {"name": self.name, "weight": self.weight, "of": self.of, **extra}
