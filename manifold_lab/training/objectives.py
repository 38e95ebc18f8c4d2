"""Training objectives: cross-entropy and the four routes to robustness.

Each objective is a callable ``objective(model, x, y, *, generator=None) ->
(loss, logs)`` with ``loss`` a scalar tensor to minimise and ``logs`` a dict of
floats (averaged per epoch by the trainer); ``name`` and a JSON-able
``config()`` identify it. :func:`make_objective` maps one strength number to an
objective for sweeps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from manifold_lab._validation import check_positive, check_positive_int
from manifold_lab.training.attacks import pgd_l2

__all__ = [
    "Objective", "CrossEntropy", "GradientNorm", "Smoothness", "NoiseAugmentation",
    "PGDAdversarial", "make_objective", "OBJECTIVE_NAMES", "SMOOTHNESS_NOISE_STD",
    "PGD_TRAIN_STEPS",
]

#: Noise std used by ``make_objective("smoothness", weight)``: the sweep varies
#: only the weight. 0.1 is the off-manifold noise scale of the toy presets, so the
#: penalty probes the model at the scale the robustness metrics use.
SMOOTHNESS_NOISE_STD = 0.1
#: PGD steps used by ``make_objective("pgd_l2", eps)``.
PGD_TRAIN_STEPS = 10


def _nonneg(name: str, value: float) -> float:
    value = float(value)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def _ce_logs(logits: torch.Tensor, y: torch.Tensor, ce: torch.Tensor) -> dict[str, float]:
    return {"ce": float(ce.detach()), "acc": float((logits.detach().argmax(1) == y).float().mean())}


class Objective:
    """Base class: subclasses set ``name`` and implement ``__call__`` and ``config``."""

    name = "objective"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def config(self) -> dict:
        """JSON-able constructor arguments plus ``name``."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class CrossEntropy(Objective):
    """Mean cross-entropy ``(1/B) sum_i -log softmax(f(x_i))_{y_i}``. Logs ``ce``, ``acc``."""

    name = "cross_entropy"

    def __call__(self, model, x, y, *, generator=None):
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        return ce, _ce_logs(logits, y, ce)


class GradientNorm(Objective):
    r"""Cross-entropy plus an input-gradient penalty (double backprop).

    .. math:: L = \frac1B\sum_i \ell_i + w\,\frac1B\sum_i \|\nabla_{x_i} h_i\|_2^2

    with ``h_i = l_i`` (the per-example cross-entropy, ``of="loss"``) or
    ``h_i = f_{y_i}(x_i)`` (the true-class logit, ``of="logit"``). The gradient is
    of the *per-example* quantity (autograd of the sum), so the penalty's
    strength does not depend on the batch size. Logs ``ce``, ``acc``, ``grad_norm_sq``.

    Parameters
    ----------
    weight : float
        ``w >= 0``.
    of : {"loss", "logit"}, default "loss"
    """

    name = "gradient_norm"

    def __init__(self, weight: float, of: str = "loss") -> None:
        self.weight = _nonneg("weight", weight)
        if of not in ("loss", "logit"):
            raise ValueError(f"of must be 'loss' or 'logit', got {of!r}")
        self.of = of

    def __call__(self, model, x, y, *, generator=None):
        xr = x.detach().requires_grad_(True)
        logits = model(xr)
        per = F.cross_entropy(logits, y, reduction="none")
        ce = per.mean()
        target = per.sum() if self.of == "loss" else logits.gather(1, y[:, None]).sum()
        (g,) = torch.autograd.grad(target, xr, create_graph=True)
        penalty = g.flatten(1).pow(2).sum(dim=1).mean()
        logs = _ce_logs(logits, y, ce)
        logs["grad_norm_sq"] = float(penalty.detach())
        return ce + self.weight * penalty, logs

    def config(self):
        return {"name": self.name, "weight": self.weight, "of": self.of}


class Smoothness(Objective):
    r"""Cross-entropy plus the mean squared logit change under Gaussian input noise.

    .. math:: L = \frac1B\sum_i \ell_i + w\,\frac1B\sum_i \|f(x_i + \sigma z_i) - f(x_i)\|_2^2,
              \quad z_i \sim N(0, I)

    Fresh noise each call (from ``generator``). The clean and noisy batches go
    through separate forward passes so BatchNorm statistics are those of each.
    Logs ``ce``, ``acc``, ``smoothness``.
    """

    name = "smoothness"

    def __init__(self, weight: float, noise_std: float) -> None:
        self.weight = _nonneg("weight", weight)
        check_positive("noise_std", noise_std)
        self.noise_std = float(noise_std)

    def __call__(self, model, x, y, *, generator=None):
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        change = model(x + self.noise_std * noise) - logits
        penalty = change.pow(2).sum(dim=1).mean()
        logs = _ce_logs(logits, y, ce)
        logs["smoothness"] = float(penalty.detach())
        return ce + self.weight * penalty, logs

    def config(self):
        return {"name": self.name, "weight": self.weight, "noise_std": self.noise_std}


class NoiseAugmentation(Objective):
    r"""Cross-entropy on noisy inputs ``x + sigma z``, fresh ``z ~ N(0, I)`` every call.

    (What the paper calls randomized smoothing; certify the smoothed classifier
    with :class:`~manifold_lab.training.smoothing.SmoothedClassifier`.) ``noise_std
    = 0`` is plain cross-entropy. Logs ``ce``, ``acc`` (both on the noisy batch).
    """

    name = "noise_augmentation"

    def __init__(self, noise_std: float) -> None:
        self.noise_std = _nonneg("noise_std", noise_std)

    def __call__(self, model, x, y, *, generator=None):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        logits = model(x + self.noise_std * noise)
        ce = F.cross_entropy(logits, y)
        return ce, _ce_logs(logits, y, ce)

    def config(self):
        return {"name": self.name, "noise_std": self.noise_std}


class PGDAdversarial(Objective):
    """Cross-entropy on :func:`pgd_l2` examples (Madry et al.); ``eps = 0`` is plain CE.

    The attack runs in eval mode without touching parameter gradients or
    BatchNorm statistics; the training forward pass then runs in the model's own
    mode. Cost: ``steps`` forward+input-backward passes plus one training step.
    Logs ``ce``, ``acc`` (both on the adversarial batch).
    """

    name = "pgd_l2"

    def __init__(self, eps: float, steps: int = 10, step_size: float | None = None,
                 bounds: tuple[float, float] | None = None) -> None:
        self.eps = _nonneg("eps", eps)
        self.steps = check_positive_int("steps", steps, minimum=0)
        self.step_size = None if step_size is None else _nonneg("step_size", step_size)
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))

    def __call__(self, model, x, y, *, generator=None):
        if self.eps > 0:
            x = pgd_l2(model, x, y, self.eps, steps=self.steps, step_size=self.step_size,
                       bounds=self.bounds, generator=generator)
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        return ce, _ce_logs(logits, y, ce)

    def config(self):
        return {"name": self.name, "eps": self.eps, "steps": self.steps,
                "step_size": self.step_size,
                "bounds": None if self.bounds is None else list(self.bounds)}


#: Names accepted by :func:`make_objective` and what ``strength`` means for each.
OBJECTIVE_NAMES = {
    "none": "ignored (plain cross-entropy)",
    "gradient_norm": "weight of the squared input-gradient norm of the per-example loss",
    "smoothness": f"weight of the squared logit change, noise std {SMOOTHNESS_NOISE_STD}",
    "noise_augmentation": "std of the Gaussian training noise",
    "pgd_l2": f"L2 radius eps of the per-example PGD attack ({PGD_TRAIN_STEPS} steps)",
}


def make_objective(name: str, strength: float) -> Objective:
    """One objective per (name, strength) for sweeps; see :data:`OBJECTIVE_NAMES`.

    ``strength = 0`` gives cross-entropy-equivalent training for every name
    except ``smoothness`` (weight 0 also reduces to it; it only costs one extra
    forward pass).
    """
    if name == "none":
        return CrossEntropy()
    if name == "gradient_norm":
        return GradientNorm(strength)
    if name == "smoothness":
        return Smoothness(strength, SMOOTHNESS_NOISE_STD)
    if name == "noise_augmentation":
        return NoiseAugmentation(strength)
    if name == "pgd_l2":
        return PGDAdversarial(strength, steps=PGD_TRAIN_STEPS)
    raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVE_NAMES)}")
