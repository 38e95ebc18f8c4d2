"""Projected gradient descent in per-example L∞ balls (Madry et al. 2018; torchattacks' ``PGD``)."""

from __future__ import annotations

from typing import Callable

import torch

from manifold_lab.training._context import eval_mode, frozen_parameters
from manifold_lab.training.attacks._l2 import per_example
from manifold_lab.training.attacks.pgd import LossFn, _check, _clamp, _per_example_cross_entropy

__all__ = ["pgd_linf"]


def pgd_linf(
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
    r"""Untargeted L∞ PGD: maximise ``loss_fn(model(x'), y)`` over ``max_j |x'_ij − x_ij| ≤ eps_i``.

    Iteration, for each example ``i`` separately (``δ`` the perturbation):

    .. math::
        δ_0 \sim \mathrm{Uniform}([-ε_i, ε_i]^D) \text{ (or 0)},\quad
        δ_{t+1} = \mathrm{clip}_{[-ε_i, ε_i]}\big(δ_t + α_i\, \mathrm{sign}(g_i)\big),\quad
        g_i = ∇_{x_i} \ell(\mathrm{model}(x + δ_t), y)_i,

    followed by clamping ``x + δ`` into ``bounds`` after every step (and after the
    random start). This is torchattacks 3.5.1's ``PGD`` update; its default
    ``alpha = 2/255`` at ``eps = 8/255`` and 10 steps is this function's default
    step rule ``α = 2.5 ε / steps``. A zero gradient entry gives a zero step
    (``sign(0) = 0``, as in torch). Model mode and parameters are handled as in
    :func:`pgd_l2` (eval mode, frozen, restored afterwards).

    Parameters
    ----------
    model : callable
        ``[n, *shape] -> [n, C]``.
    x : Tensor, shape [n, *shape]
        Clean inputs, floating point.
    y : Tensor, shape [n]
    eps : float or Tensor, shape [n]
        Half-width of each example's box (>= 0).
    steps : int
        Gradient steps (default 10; 0 returns the random start).
    step_size : float or Tensor, shape [n], optional
        ``α``; default ``DEFAULT_STEP_FACTOR * eps / steps`` = ``2.5 eps / steps``.
    loss_fn : callable, optional
        ``loss_fn(logits, y) -> [n]`` per-example losses (default cross-entropy).
        Only the sign of the gradient is used, so a mean instead of a sum changes nothing.
    bounds : (low, high), optional
        The result is clamped into them (``x`` must lie inside).
    random_start : bool
        Start uniformly in each box.
    generator : torch.Generator, optional
        Randomness of the start, on ``x``'s device.

    Returns
    -------
    Tensor, shape [n, *shape]
        Detached adversarial inputs with ``|x_adv − x| ≤ eps_i`` entrywise.
    """
    x, eps_t, alpha, low, high = _check(x, y, eps, steps, step_size, bounds, generator)
    loss_fn = _per_example_cross_entropy if loss_fn is None else loss_fn
    eps_b, alpha_b = per_example(eps_t, x), per_example(alpha, x)
    if random_start:
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        delta = (2 * u - 1) * eps_b
        delta = _clamp(x + delta, low, high) - x if low is not None else delta
    else:
        delta = torch.zeros_like(x)
    with eval_mode(model), frozen_parameters(model), torch.enable_grad():
        for _ in range(steps):
            x_in = (x + delta).requires_grad_(True)
            loss = loss_fn(model(x_in), y)
            (grad,) = torch.autograd.grad(loss.sum(), x_in)
            delta = torch.maximum(torch.minimum(delta + alpha_b * grad.sign(), eps_b), -eps_b)
            if low is not None:
                delta = _clamp(x + delta, low, high) - x
    x_adv = x + delta
    return _clamp(x_adv, low, high) if low is not None else x_adv
