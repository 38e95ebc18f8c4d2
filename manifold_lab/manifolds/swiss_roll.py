"""``SwissRoll``: the classic rolled-up rectangle, in a random 3-dim affine flat of ``R^d``."""

from __future__ import annotations

import math

import torch

from manifold_lab._validation import check_positive
from manifold_lab.manifolds._analytic import EmbeddedManifold, check_dims
from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds._inverse_cdf import invert_increasing

__all__ = ["SwissRoll", "spiral_arc_length"]

_LOCAL_DIM = 3
#: The classic roll (as in the scikit-learn generator): 1.5 turns of the spiral.
DEFAULT_T_RANGE = (1.5 * math.pi, 4.5 * math.pi)
DEFAULT_HEIGHT = 21.0


def spiral_arc_length(t: torch.Tensor) -> torch.Tensor:
    """Arc length of ``(t cos t, t sin t)`` from 0: ``S(t) = (t sqrt(1 + t^2) + asinh t) / 2``."""
    return 0.5 * (t * torch.sqrt(1 + t * t) + torch.asinh(t))


class SwissRoll(EmbeddedManifold):
    """The surface ``y(t, h) = (t cos t, h, t sin t)``, ``t in [t0, t1]``, ``h in [0, H]``.

    Placed in ``R^d`` as ``x = c + F y`` with a Haar-random ``F [d, 3]`` and Gaussian ``c``.
    A 2-manifold with boundary; tangent bases are closed-form,
    ``[(cos t - t sin t, 0, sin t + t cos t) / sqrt(1 + t^2), (0, 1, 0)]``.

    Parameters
    ----------
    ambient_dim : int
        ``d >= 3``.
    t_range : (float, float)
        ``(t0, t1)`` with ``0 < t0 < t1``; default ``(1.5 pi, 4.5 pi)``.
    height : float
        ``H > 0``; default 21.
    seed : int
        Fixes the frame and the centre (see ``_embedding``).

    Notes
    -----
    Sampling measure: uniform with respect to surface area (the surface is
    developable: area element ``sqrt(1 + t^2) dt dh``), i.e. ``h`` uniform and the
    arc length ``S(t)`` uniform, inverted by bisection. (The scikit-learn
    generator draws ``t`` uniformly instead, denser on the inner turns.)

    There is no closed-form nearest point (``nearest_point``/``distance`` raise
    ``NotImplementedError``). ``tangent_basis(x)`` reads ``(t, h)`` off the inverse
    chart ``t = |(y1, y3)|``, ``h = y2`` (clamped to the parameter ranges) and
    checks ``|x - x(t, h)| <= max_distance``; that chart residual is at least the
    true distance, so the check never accepts a point farther than ``max_distance``.
    """

    _closed_form_nearest = False

    def __init__(self, ambient_dim: int, *, t_range: tuple[float, float] = DEFAULT_T_RANGE,
                 height: float = DEFAULT_HEIGHT, seed: int = 0):
        check_dims(2, ambient_dim, _LOCAL_DIM)
        if len(t_range) != 2:
            raise ValueError(f"t_range must be a pair (t0, t1), got {t_range!r}")
        check_positive("t_range", t_range)
        check_positive("height", height)
        t0, t1 = float(t_range[0]), float(t_range[1])
        if t0 >= t1:
            raise ValueError(f"t_range must satisfy t0 < t1, got {t_range!r}")
        super().__init__(Embedding.random(ambient_dim, _LOCAL_DIM, seed), 2, seed)
        self.t_range = (t0, t1)
        self.height = float(height)

    @property
    def length_scale(self) -> float:
        return self.t_range[1] + self.height + float(self.center.norm())

    def _sample_local(self, n, generator, device):
        t0, t1 = self.t_range
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64, device=device)
        s0, s1 = (spiral_arc_length(torch.tensor(v, dtype=torch.float64)).item() for v in (t0, t1))
        t = invert_increasing(spiral_arc_length, s0 + (s1 - s0) * u[:, 0], t0, t1)
        return self._point(t, self.height * u[:, 1])

    @staticmethod
    def _point(t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.stack([t * torch.cos(t), h, t * torch.sin(t)], -1)

    def _foot_local(self, y):
        t = torch.linalg.vector_norm(y[..., [0, 2]], dim=-1).clamp(*self.t_range)
        h = y[..., 1].clamp(0.0, self.height)
        return self._point(t, h), torch.ones(t.shape, dtype=torch.bool, device=t.device)

    def _tangent_local(self, foot):
        t = torch.linalg.vector_norm(foot[..., [0, 2]], dim=-1)
        cos_t, sin_t = torch.cos(t), torch.sin(t)
        speed = torch.sqrt(1 + t * t)
        zero, one = torch.zeros_like(t), torch.ones_like(t)
        e_t = torch.stack([(cos_t - t * sin_t) / speed, zero, (sin_t + t * cos_t) / speed], -1)
        e_h = torch.stack([zero, one, zero], -1)
        return torch.stack([e_t, e_h], -1)
