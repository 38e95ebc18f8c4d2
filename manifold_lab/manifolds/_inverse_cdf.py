"""Sampling by inverting a monotone CDF with vectorised bisection (exact to float64)."""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["invert_increasing", "BISECTION_STEPS"]

#: Halving the bracket 64 times shrinks it by 2^-64 < eps(float64) / 4 for
#: brackets of size up to ~100, i.e. to the float64 resolution of the root.
BISECTION_STEPS = 64


def invert_increasing(fn: Callable[[torch.Tensor], torch.Tensor], target: torch.Tensor,
                      lo: float, hi: float) -> torch.Tensor:
    """Solve ``fn(t) = target`` for increasing ``fn`` on ``[lo, hi]``, elementwise.

    Bisection rather than Newton: it needs no derivative, cannot leave the
    bracket, and runs a fixed number of vectorised steps (deterministic cost).

    Parameters
    ----------
    fn : callable, Tensor -> Tensor
        Strictly increasing on ``[lo, hi]``, applied elementwise.
    target : Tensor, shape [...]
        Values in ``[fn(lo), fn(hi)]``.

    Returns
    -------
    Tensor, shape [...]
    """
    a = torch.full_like(target, lo)
    b = torch.full_like(target, hi)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (a + b)
        below = fn(mid) < target
        a = torch.where(below, mid, a)
        b = torch.where(below, b, mid)
    return 0.5 * (a + b)
