"""Projected gradient descent in per-example L2 balls (Madry et al. 2018)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from manifold_lab._validation import check_finite, check_generator, check_min_ndim, check_positive_int
from manifold_lab.training._context import eval_mode, frozen_parameters
from manifold_lab.training.attacks._l2 import per_example, project_l2, unit_l2

__all__ = ["pgd_l2", "DEFAULT_STEP_FACTOR"]

#: Default step size is ``DEFAULT_STEP_FACTOR * eps / steps``: the steps together
#: travel 2.5 ball radii, enough to cross the ball from a random start and then
#: slide along its boundary (the usual choice since Madry et al.).
DEFAULT_STEP_FACTOR = 2.5

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pgd_l2(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | torch.Tensor,
    steps: int = 10,
    step_size: float | torch.Tensor | None = None,
    loss_fn: LossFn | None = None,
    bounds: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Untargeted L2 PGD: maximise ``loss_fn(model(x'), y)`` over ``‖x'_i − x_i‖₂ ≤ eps_i``.

    Distance measure: the Euclidean norm of each example's flattened
    perturbation, ``‖(x' − x)[i].flatten()‖₂``; every example has its own ball.
    Iteration, for each example ``i`` separately (``δ`` the perturbation):

    .. math::
        δ_0 \sim \mathrm{Uniform}(B(0, ε_i)) \text{ (or 0)},\quad
        δ_{t+1} = Π_{B(0,ε_i)}\big(δ_t + α_i\, g_i/‖g_i‖\big),\quad
        g_i = ∇_{x_i} \ell(\mathrm{model}(x + δ_t), y)_i,

    followed by clamping ``x + δ`` into ``bounds``. A zero gradient gives a zero
    step (no division by zero); gradients are rescaled by their max-abs entry
    before normalising, so tiny float32 gradients do not underflow to zero.

    The model runs in eval mode (BatchNorm uses its running statistics and is not
    updated; each example's gradient is its own) and every submodule's mode is
    restored afterwards. Parameters are frozen during the attack (restored
    afterwards), so no parameter-gradient work is done and no ``.grad`` is written.

    Parameters
    ----------
    model : callable
        ``[n, *shape] -> [n, C]`` (an ``nn.Module`` or any differentiable function,
        parameter-free ones included).
    x : Tensor, shape [n, *shape]
        Clean inputs (``[n, d]`` vectors, ``[n, c, h, w]`` images, ...), floating point.
    y : Tensor, shape [n]
        Labels passed to ``loss_fn``.
    eps : float or Tensor, shape [n]
        Radius of each example's ball (>= 0; 0 returns ``x``).
    steps : int
        Number of gradient steps (default 10; 0 returns the random start).
    step_size : float or Tensor, shape [n], optional
        ``α``; default ``DEFAULT_STEP_FACTOR * eps / steps`` = ``2.5 eps / steps``
        per example, so mixed radii get proportionate steps.
    loss_fn : callable, optional
        ``loss_fn(logits, y) -> [n]`` per-example losses to increase (their sum is
        differentiated; a scalar is also accepted). Default: per-example
        cross-entropy. A margin loss ``z_other − z_y`` also works.
    bounds : (low, high), optional
        Floats or tensors broadcastable to ``x``; the result is clamped into them.
        ``x`` must lie inside.
    random_start : bool
        Start uniformly inside each ball (symmetric: direction uniform on the
        sphere, radius ``eps · U^{1/D}`` with ``D`` values per example).
    generator : torch.Generator, optional
        Randomness of the start, on ``x``'s device.

    Returns
    -------
    Tensor, shape [n, *shape]
        Detached adversarial inputs with ``‖x_adv[i] − x[i]‖₂ ≤ eps_i`` (to rounding).

    Examples
    --------
    >>> import torch
    >>> from manifold_lab.models import MLP
    >>> from manifold_lab.training import pgd_l2
    >>> model = MLP(8, 3, hidden=(16,))
    >>> x, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    >>> x_adv = pgd_l2(model, x, y, eps=0.5, generator=torch.Generator().manual_seed(0))
    >>> bool(((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-6).all())
    True
    """
    x, eps_t, alpha, low, high = _check(x, y, eps, steps, step_size, bounds, generator)
    loss_fn = _per_example_cross_entropy if loss_fn is None else loss_fn
    if random_start:
        delta = _random_in_ball(x, eps_t, generator)
        delta = _clamp(x + delta, low, high) - x if low is not None else delta
    else:
        delta = torch.zeros_like(x)
    with eval_mode(model), frozen_parameters(model), torch.enable_grad():
        for _ in range(steps):
            x_in = (x + delta).requires_grad_(True)
            loss = loss_fn(model(x_in), y)
            (grad,) = torch.autograd.grad(loss.sum(), x_in)
            delta = project_l2(delta + per_example(alpha, x) * unit_l2(grad), eps_t)
            if low is not None:
                delta = _clamp(x + delta, low, high) - x
    x_adv = x + delta
    return _clamp(x_adv, low, high) if low is not None else x_adv


def _per_example_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def _random_in_ball(x: torch.Tensor, eps: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform draws in each example's ball ``B(0, eps_i)`` (symmetric about 0)."""
    n, dim = x.shape[0], x[0].numel()
    direction = unit_l2(torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device))
    u = torch.rand(n, generator=generator, dtype=x.dtype, device=x.device)
    return direction * per_example(eps * u.pow(1.0 / dim), x)


def _clamp(t: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(t, high), low)


def _as_per_example(name: str, value, n: int, x: torch.Tensor) -> torch.Tensor:
    """A float or ``[n]`` tensor as a ``[n]`` tensor on ``x``'s dtype/device, checked finite and >= 0."""
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{name} must be a float or a tensor of shape [{n}] (one per example), "
                         f"got shape {list(t.shape)}")
    check_finite(name, t)
    if bool((t < 0).any()):
        raise ValueError(f"{name} must be >= 0, got minimum {float(t.min())}")
    return t


def _check(x, y, eps, steps, step_size, bounds, generator):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    check_min_ndim("x", x, 2, "[n, *shape]")
    n = x.shape[0]
    if isinstance(y, torch.Tensor) and (y.ndim == 0 or y.shape[0] != n):
        raise ValueError(f"y must have one entry per example ([{n}, ...]), got shape {list(y.shape)}")
    check_positive_int("steps", steps, minimum=0)
    check_generator(generator, x.device)
    x = x.detach()
    eps_t = _as_per_example("eps", eps, n, x)
    if step_size is None:
        alpha = eps_t * (DEFAULT_STEP_FACTOR / max(steps, 1))
    else:
        alpha = _as_per_example("step_size", step_size, n, x)
    low = high = None
    if bounds is not None:
        if len(bounds) != 2:
            raise ValueError("bounds must be a pair (low, high)")
        low = torch.as_tensor(bounds[0], dtype=x.dtype, device=x.device).expand_as(x)
        high = torch.as_tensor(bounds[1], dtype=x.dtype, device=x.device).expand_as(x)
        if bool((low > high).any()):
            raise ValueError("bounds must satisfy low <= high everywhere")
        if bool(((x < low) | (x > high)).any()):
            raise ValueError("x lies outside bounds; clamp the inputs first or widen the bounds")
    return x, eps_t, alpha, low, high
