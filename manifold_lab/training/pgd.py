"""Per-example projected gradient descent in L2 (Madry et al.), done per example.

Fixes the known defects of the paper's code: every quantity (random start, step
normalisation, projection) uses the L2 norm of *each* example over
``flatten(1)``, so ``eps`` is a per-example radius, not a batch budget; the start
is symmetric; the attack runs in eval mode and leaves no gradient on parameters.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from manifold_lab._validation import check_generator, check_positive_int

__all__ = ["pgd_l2", "DEFAULT_STEP_FACTOR"]

#: Default step size is ``DEFAULT_STEP_FACTOR * eps / steps`` (Madry et al.'s
#: 2.5: enough to cross the ball and come back after a random start).
DEFAULT_STEP_FACTOR = 2.5
#: Gradient norms below this count as zero (no step instead of a 0/0).
_TINY = 1e-30


def _per_example(value: float | torch.Tensor, n: int, like: torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{name} must be a float or a tensor of shape [{n}], got shape {list(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0")
    return t


def _project(x0: torch.Tensor, x: torch.Tensor, eps_v: torch.Tensor) -> torch.Tensor:
    delta = x - x0
    norm = delta.flatten(1).norm(dim=1).view_as(eps_v)
    factor = torch.where(norm > eps_v, eps_v / norm.clamp_min(_TINY), torch.ones_like(norm))
    return x0 + delta * factor


def pgd_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float | torch.Tensor,
           steps: int = 10, step_size: float | torch.Tensor | None = None,
           loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
           bounds: tuple[float, float] | None = None, random_start: bool = True,
           generator: torch.Generator | None = None) -> torch.Tensor:
    r"""L2 projected gradient ascent on the loss, one ball per example.

    Distance measure: L2 over ``x[i].flatten()``; each result satisfies
    ``||x_adv[i] - x[i]||_2 <= eps[i]``. Iterates

    .. math:: x^{t+1} = \Pi_{B(x, \epsilon)}\big(x^t + \alpha\, g / \|g\|_2\big),
              \quad g = \nabla_{x} \ell(f(x^t), y)

    per example (no step where ``g = 0``), then clamps to ``bounds``.

    Parameters
    ----------
    model : nn.Module
        Maps ``x`` to logits ``[n, n_classes]``. Put in eval mode for the attack
        (BatchNorm uses running statistics, which are not updated); every
        submodule's mode is restored afterwards. Gradients are taken w.r.t. the
        input only (``torch.autograd.grad``), so parameters' ``.grad`` is untouched.
    x : Tensor, shape [n, ...]
        Clean inputs (any shape with a leading batch dim).
    y : Tensor, shape [n]
        Labels passed to ``loss_fn``.
    eps : float or Tensor, shape [n]
        L2 radius of each example's ball (>= 0).
    steps : int, default 10
        Number of gradient steps (0 returns the random start).
    step_size : float or Tensor [n], optional
        Default ``DEFAULT_STEP_FACTOR * eps / steps`` = ``2.5 * eps / steps``.
    loss_fn : callable, optional
        ``loss_fn(logits, y)`` -> per-example losses ``[n]`` (or their sum);
        they are summed, so each example's gradient is its own. Default
        cross-entropy with ``reduction="none"``.
    bounds : (float, float), optional
        Clamp the result to ``[lo, hi]`` (e.g. ``(0, 1)`` for images).
    random_start : bool, default True
        Start uniformly inside each ball (direction uniform on the sphere,
        radius ``eps * U**(1/d)``); otherwise start at ``x``.
    generator : torch.Generator, optional
        Source of the random start.

    Returns
    -------
    Tensor, shape like x
        Detached adversarial inputs.

    Examples
    --------
    >>> model = MLP(20, 3)
    >>> x, y = torch.randn(8, 20), torch.randint(0, 3, (8,))
    >>> x_adv = pgd_l2(model, x, y, eps=0.5, steps=10)
    >>> bool(((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all())
    True
    """
    if x.ndim < 1 or y.shape[:1] != x.shape[:1]:
        raise ValueError(f"x must be [n, ...] and y [n]; got x {list(x.shape)}, y {list(y.shape)}")
    steps = check_positive_int("steps", steps, minimum=0)
    check_generator(generator, x.device)
    n = x.shape[0]
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    eps_t = _per_example(eps, n, x, "eps")
    bshape = (n,) + (1,) * (x.ndim - 1)
    eps_v = eps_t.view(bshape)
    if step_size is None:
        alpha = eps_v * (DEFAULT_STEP_FACTOR / max(steps, 1))
    else:
        alpha = _per_example(step_size, n, x, "step_size").view(bshape)
    if loss_fn is None:
        def loss_fn(logits, labels):
            return F.cross_entropy(logits, labels, reduction="none")
    if bounds is not None and bounds[0] >= bounds[1]:
        raise ValueError(f"bounds must be (lo, hi) with lo < hi, got {bounds}")

    x0 = x.detach()
    if random_start:
        d = x0[0].numel()
        direction = torch.randn(x0.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction / direction.flatten(1).norm(dim=1).clamp_min(_TINY).view(bshape)
        u = torch.rand(n, generator=generator, device=x.device, dtype=torch.float64)
        radius = (u ** (1.0 / d)).to(x.dtype).view(bshape) * eps_v
        x_adv = x0 + direction * radius
    else:
        x_adv = x0.clone()
    if bounds is not None:
        x_adv = x_adv.clamp(bounds[0], bounds[1])

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                loss = loss_fn(model(x_adv), y).sum()
                (grad,) = torch.autograd.grad(loss, x_adv)
            gnorm = grad.flatten(1).norm(dim=1).view(bshape)
            unit = torch.where(gnorm > _TINY, grad / gnorm.clamp_min(_TINY), torch.zeros_like(grad))
            x_adv = _project(x0, x_adv.detach() + alpha * unit, eps_v)
            if bounds is not None:
                # x0 inside the box => clamping moves every coordinate toward x0, so
                # the result stays in the ball.
                x_adv = x_adv.clamp(bounds[0], bounds[1])
    finally:
        for m, mode in modes:
            m.training = mode
    return x_adv.detach()
