"""Seeded, well-separated class centres and random orthonormal frames.

Everything here is deterministic given a ``torch.Generator`` and returns float64
CPU tensors; distributions cast them to the caller's dtype/device on use.
"""

from __future__ import annotations

import math

import torch

__all__ = ["random_orthonormal", "simplex_vertices", "spread_unit_vectors", "class_centres"]

#: Iterations and step of the repulsion used when no regular simplex fits; the
#: Riesz-energy descent has converged to ~1e-6 in the minimum distance by then
#: for the sizes used here (n <= 100 points), and it is deterministic.
REPULSION_STEPS = 2000
REPULSION_STEP_SIZE = 0.05


def random_orthonormal(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """Haar-random ``[rows, cols]`` matrix with orthonormal columns (QR with sign fix)."""
    g = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    # Fixing the signs of diag(R) makes Q a deterministic function of G (Haar-distributed).
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1.0
    return q * signs


def simplex_vertices(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``n <= dim + 1`` unit vectors in ``R^dim`` with pairwise inner products ``-1/(n-1)``.

    The vertices of a regular simplex centred at 0, in a random orientation.
    """
    if n > dim + 1:
        raise ValueError(f"a regular simplex with {n} vertices needs dim >= {n - 1}, got {dim}")
    e = torch.eye(n, dtype=torch.float64) - 1.0 / n  # centred standard basis of R^n
    basis = torch.linalg.svd(e).Vh[: n - 1]  # orthonormal basis of the (n-1)-dim span
    coords = e @ basis.T
    coords = coords / coords.norm(dim=1, keepdim=True)
    return coords @ random_orthonormal(dim, n - 1, generator).T


def spread_unit_vectors(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` well-separated unit vectors in ``R^dim`` (``dim >= 2``).

    A regular simplex when ``n <= dim + 1`` (the best possible separation);
    equally spaced angles with a random phase on the circle (``dim == 2``);
    otherwise a seeded start relaxed by ``REPULSION_STEPS`` steps of projected
    gradient descent on the Riesz energy ``sum_{i<j} 1 / |u_i - u_j|``.
    """
    if n <= dim + 1:
        return simplex_vertices(n, dim, generator)
    if dim == 2:
        phase = 2 * math.pi * torch.rand((), generator=generator, dtype=torch.float64)
        angles = phase + 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
        return torch.stack([angles.cos(), angles.sin()], dim=1)
    u = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    eye = torch.eye(n, dtype=torch.float64)
    for _ in range(REPULSION_STEPS):
        diff = u[:, None, :] - u[None, :, :]
        dist = diff.norm(dim=-1) + eye  # + eye avoids 0/0 on the diagonal
        force = (diff / dist[..., None] ** 3 * (1 - eye)[..., None]).sum(1)
        force = force - (force * u).sum(1, keepdim=True) * u  # tangent part
        step = REPULSION_STEP_SIZE / force.norm(dim=1).max().clamp_min(1e-12)
        u = u + step * force
        u = u / u.norm(dim=1, keepdim=True)
    return u


def class_centres(n: int, dim: int, separation: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` class centres in ``R^dim`` whose closest pair is ``separation`` apart.

    A regular simplex (all pairs exactly ``separation`` apart) when it fits,
    equally spaced points on the line when ``dim == 1``, otherwise
    :func:`spread_unit_vectors` rescaled to the requested minimum distance.
    """
    if dim == 1 and n > 2:
        return separation * (torch.arange(n, dtype=torch.float64) - (n - 1) / 2)[:, None]
    u = spread_unit_vectors(n, dim, generator) if dim > 1 else simplex_vertices(n, dim, generator)
    dist = torch.cdist(u, u) + torch.eye(n, dtype=torch.float64) * 1e300
    return u * (separation / dist.min())
