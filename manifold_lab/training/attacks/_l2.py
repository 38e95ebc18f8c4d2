"""Per-example L2 geometry on ``[n, *shape]`` tensors (norms over ``flatten(1)``)."""

from __future__ import annotations

import torch

__all__ = ["per_example", "per_example_norm", "unit_l2", "project_l2"]


def per_example(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape ``v`` ``[n]`` to ``[n, 1, ..., 1]`` so it broadcasts over one example of ``like``."""
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def per_example_norm(t: torch.Tensor) -> torch.Tensor:
    """``‖t[i].flatten()‖₂``, Tensor, shape [n]."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1)


def unit_l2(g: torch.Tensor) -> torch.Tensor:
    """``g[i] / ‖g[i]‖₂`` per example; 0 where ``g[i] = 0``.

    Each example is first divided by its max-abs entry, so the squared entries
    cannot underflow (a float32 gradient of size 1e-25 still gets a unit step).
    """
    flat = g.flatten(1)
    scale = flat.abs().amax(dim=1, keepdim=True)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    flat = flat / safe
    norm = torch.linalg.vector_norm(flat, dim=1, keepdim=True)
    # norm >= 1 wherever scale > 0 (the max entry is 1), else flat is all zeros.
    return (flat / torch.where(norm > 0, norm, torch.ones_like(norm))).view_as(g)


def project_l2(delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Project each ``delta[i]`` onto the ball ``‖·‖₂ ≤ eps[i]`` (``eps`` shape [n])."""
    norm = per_example_norm(delta)
    factor = torch.where(norm > eps, eps / torch.where(norm > 0, norm, torch.ones_like(norm)),
                         torch.ones_like(norm))
    return delta * per_example(factor, delta)
