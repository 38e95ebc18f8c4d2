"""``Sphere``: a k-sphere of radius ``r`` in a random (k+1)-dimensional affine flat of ``R^d``."""

from __future__ import annotations

import math

import torch

from manifold_lab._validation import check_positive
from manifold_lab.manifolds._analytic import EmbeddedManifold, check_dims
from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds.base import check_points

__all__ = ["Sphere", "householder_complement"]


def householder_complement(u: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the complement ``u^perp`` of unit vectors ``u``, in closed form.

    With ``s = sign(u_m)`` (``+1`` at 0) and ``w = u + s e_m``, the Householder
    reflection ``H = I - 2 w w^T / |w|^2`` maps ``e_m`` to ``-s u``; its other
    ``m - 1`` columns are therefore orthonormal and orthogonal to ``u``. The sign
    choice keeps ``|w|^2 = 2 + 2|u_m| >= 2`` (no cancellation).

    Parameters
    ----------
    u : Tensor, shape [..., m]
        Unit vectors.

    Returns
    -------
    Tensor, shape [..., m, m - 1]
    """
    m = u.shape[-1]
    sign = torch.where(u[..., -1:] >= 0, 1.0, -1.0).to(u.dtype)
    w = u.clone()
    w[..., -1:] = w[..., -1:] + sign
    eye = torch.eye(m, dtype=u.dtype, device=u.device)
    h = eye - 2.0 * w[..., :, None] * w[..., None, :] / (w * w).sum(-1)[..., None, None]
    return h[..., :, : m - 1]


class Sphere(EmbeddedManifold):
    """A k-sphere ``{c + F y : |y| = r}`` with ``F [d, k+1]`` a random orthonormal frame.

    Parameters
    ----------
    intrinsic_dim : int
        ``k >= 1`` (a circle is ``k = 1``); needs ``k < d``.
    ambient_dim : int
        ``d``.
    radius : float
        ``r > 0``.
    seed : int
        Fixes the Haar-random frame and the Gaussian centre (see ``_embedding``).

    Attributes
    ----------
    center : Tensor, shape [d]
        float64 centre ``c``.
    frame : Tensor, shape [d, k+1]
        float64 orthonormal frame of the flat containing the sphere.
    radius : float

    Notes
    -----
    Sampling measure: uniform (normalised surface measure), drawn as
    ``y = r g / |g|`` with ``g ~ N(0, I_{k+1})``. Closed forms, with
    ``y = F^T (x - c)``: ``nearest_point(x) = c + r F y / |y|``;
    ``distance(x)^2 = |(I - F F^T)(x - c)|^2 + (|y| - r)^2``;
    ``T_x M = F (y/|y|)^perp``. The centre (``|y| = 0``) has no nearest point.
    """

    _degenerate_where = "its centre"

    def __init__(self, intrinsic_dim: int, ambient_dim: int, *, radius: float = 1.0, seed: int = 0):
        check_dims(intrinsic_dim, ambient_dim, intrinsic_dim + 1)
        check_positive("radius", radius)
        super().__init__(Embedding.random(ambient_dim, intrinsic_dim + 1, seed), intrinsic_dim, seed)
        self.radius = float(radius)

    @property
    def length_scale(self) -> float:
        return self.radius + float(self.center.norm())

    def to_local(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates ``y = (x - c) @ F`` in the sphere's flat: ``[..., d] -> [..., k+1]``."""
        return self._embedding.to_local(check_points("x", x, self.ambient_dim))

    def from_local(self, y: torch.Tensor) -> torch.Tensor:
        """``x = c + F y``: ``[..., k+1] -> [..., d]``."""
        return self._embedding.from_local(check_points("y", y, self._k + 1))

    def _sample_local(self, n, generator, device):
        g = torch.randn(n, self._k + 1, generator=generator, dtype=torch.float64, device=device)
        return self.radius * g / torch.linalg.vector_norm(g, dim=-1, keepdim=True)

    def _foot_local(self, y):
        norm = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        # Below sqrt(eps) * r the direction y/|y| is mostly rounding noise: treat as the centre.
        defined = norm[..., 0] > math.sqrt(torch.finfo(y.dtype).eps) * self.radius
        return self.radius * y / norm.clamp_min(torch.finfo(y.dtype).tiny), defined

    def _distance_local(self, y):
        return (torch.linalg.vector_norm(y, dim=-1) - self.radius).abs()

    def _tangent_local(self, foot):
        return householder_complement(foot / self.radius)

    def project_tangent(self, x, v, *, max_distance=None):
        """``P_T v = F (I - u u^T) F^T v`` with ``u = y / |y|`` (no basis is formed)."""
        foot = self._checked_foot(x, max_distance)
        v = check_points("v", v, self.ambient_dim)
        frame, _ = self._embedding.cast(v.dtype, v.device)
        u = (foot / self.radius).to(v.dtype)
        w = v @ frame
        w = w - (w * u).sum(-1, keepdim=True) * u
        return w @ frame.T
