"""``Torus``: the 2-torus of revolution (radii ``R > r``) in a random 3-dim affine flat of ``R^d``."""

from __future__ import annotations

import math

import torch

from manifold_lab._validation import check_positive
from manifold_lab.manifolds._analytic import EmbeddedManifold, check_dims
from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds._inverse_cdf import invert_increasing

__all__ = ["Torus"]

_LOCAL_DIM = 3


class Torus(EmbeddedManifold):
    """The surface of revolution ``|(sqrt(y1^2 + y2^2) - R, y3)| = r`` in a random 3-flat of ``R^d``.

    Local parametrisation (``theta`` around the axis ``e3``, ``phi`` around the tube):

        y(theta, phi) = ((R + r cos phi) cos theta, (R + r cos phi) sin theta, r sin phi),

    placed in ``R^d`` as ``x = c + F y`` with a Haar-random ``F [d, 3]`` and Gaussian ``c``.

    Parameters
    ----------
    ambient_dim : int
        ``d >= 3``.
    radii : (float, float)
        ``(R, r)``: distance from the axis to the tube's core circle, and the tube
        radius; ``R > r > 0`` (else the surface self-intersects).
    seed : int
        Fixes the frame and the centre (see ``_embedding``).

    Attributes
    ----------
    center : Tensor, shape [d]
    frame : Tensor, shape [d, 3]
    radii : tuple of float

    Notes
    -----
    Sampling measure: uniform with respect to surface area, whose density in
    ``(theta, phi)`` is ``r (R + r cos phi)``: ``theta`` uniform on ``[0, 2 pi)``
    and ``phi`` drawn by inverting its CDF ``(phi + (r/R) sin phi) / (2 pi)``.
    Closed forms, with ``rho = |(y1, y2)|`` and the core point
    ``q = R (y1, y2, 0) / rho``: ``nearest_point = c + F (q + r (y - q)/|y - q|)``,
    ``distance^2 = |(I - F F^T)(x - c)|^2 + (sqrt((rho - R)^2 + y3^2) - r)^2``.
    The nearest point is undefined on the axis (``rho = 0``) and on the core
    circle (``y = q``).
    """

    _degenerate_where = "the torus axis or its core circle"

    def __init__(self, ambient_dim: int, *, radii: tuple[float, float] = (2.0, 1.0), seed: int = 0):
        check_dims(2, ambient_dim, _LOCAL_DIM)
        if len(radii) != 2:
            raise ValueError(f"radii must be a pair (R, r), got {radii!r}")
        check_positive("radii", radii)
        big, small = float(radii[0]), float(radii[1])
        if big <= small:
            raise ValueError(f"radii must satisfy R > r (else the torus self-intersects), got R={big}, r={small}")
        super().__init__(Embedding.random(ambient_dim, _LOCAL_DIM, seed), 2, seed)
        self.radii = (big, small)

    @property
    def length_scale(self) -> float:
        return sum(self.radii) + float(self.center.norm())

    def _sample_local(self, n, generator, device):
        big, small = self.radii
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64, device=device)
        theta = 2 * math.pi * u[:, 0]
        ratio = small / big
        phi = invert_increasing(lambda p: p + ratio * torch.sin(p), 2 * math.pi * u[:, 1], 0.0, 2 * math.pi)
        ring = big + small * torch.cos(phi)
        return torch.stack([ring * torch.cos(theta), ring * torch.sin(theta), small * torch.sin(phi)], -1)

    def _foot_local(self, y):
        big, small = self.radii
        # Below sqrt(eps) * length the directions below are rounding noise: treat as degenerate.
        tiny = math.sqrt(torch.finfo(y.dtype).eps) * big
        rho = torch.linalg.vector_norm(y[..., :2], dim=-1, keepdim=True)
        core = torch.cat([big * y[..., :2] / rho.clamp_min(tiny), torch.zeros_like(rho)], -1)
        off_core = y - core
        tube = torch.linalg.vector_norm(off_core, dim=-1, keepdim=True)
        defined = (rho[..., 0] > tiny) & (tube[..., 0] > tiny)
        return core + small * off_core / tube.clamp_min(tiny), defined

    def _distance_local(self, y):
        big, small = self.radii
        rho = torch.linalg.vector_norm(y[..., :2], dim=-1)
        return (torch.sqrt((rho - big).square() + y[..., 2].square()) - small).abs()

    def _tangent_local(self, foot):
        big, small = self.radii
        rho = torch.linalg.vector_norm(foot[..., :2], dim=-1, keepdim=True)
        cos_t, sin_t = foot[..., :1] / rho, foot[..., 1:2] / rho
        cos_p, sin_p = (rho - big) / small, foot[..., 2:] / small
        zero = torch.zeros_like(cos_t)
        # Unit partial derivatives d/dtheta and d/dphi of y(theta, phi); they are orthogonal.
        e_theta = torch.cat([-sin_t, cos_t, zero], -1)
        e_phi = torch.cat([-sin_p * cos_t, -sin_p * sin_t, cos_p], -1)
        return torch.stack([e_theta, e_phi], -1)
