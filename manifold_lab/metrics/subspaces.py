"""Agreement of two k-dimensional subspaces given by orthonormal bases (learned vs exact tangents)."""

from __future__ import annotations

import torch

from manifold_lab.metrics._checks import check_basis

__all__ = ["subspace_overlap", "subspace_distance"]


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(a, torch.Tensor) or a.ndim < 2:
        raise ValueError(f"a must be a basis tensor of shape [..., d, k], got {getattr(a, 'shape', type(a))}")
    check_basis(a, a.shape[-2], name="a")
    check_basis(b, a.shape[-2], name="b")
    return a, b.to(a)


def subspace_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|A^T B|_F^2 / min(k_a, k_b)``: 1 for the same space, 0 for orthogonal ones.

    The mean squared cosine of the principal angles between the spans; for a
    uniformly random ``k``-dim subspace of ``R^d`` its expectation is ``k / d``.

    Parameters
    ----------
    a : Tensor, shape [..., d, k_a]
    b : Tensor, shape [..., d, k_b]
        Orthonormal columns; batch dims broadcast.

    Returns
    -------
    Tensor, shape [...]
    """
    a, b = _pair(a, b)
    return (a.mT @ b).square().sum((-2, -1)) / min(a.shape[-1], b.shape[-1])


def subspace_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|A A^T - B B^T|_2`` (sine of the largest principal angle for equal ``k``): ``[...]``."""
    a, b = _pair(a, b)
    return torch.linalg.matrix_norm(a @ a.mT - b @ b.mT, ord=2)
