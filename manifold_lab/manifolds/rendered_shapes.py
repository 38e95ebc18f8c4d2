"""``RenderedShape``: images of one smooth glyph whose pose (position, scale, rotation) varies.

The glyph is a soft union of ``K`` elongated Gaussian strokes in its own frame,

    g(q) = 1 - exp( - sum_j exp( -((q_1 - c_j1)^2 / w_j1^2 + (q_2 - c_j2)^2 / w_j2^2) / 2 ) ),

drawn at pose ``z = (t_x, t_y, log s, theta)`` by mapping each pixel centre ``p`` of an
``h x w`` grid on ``[-1, 1]^2`` (``p_1`` rightwards, ``p_2`` upwards) to glyph
coordinates ``q = R(-theta) (p - t) / s``. ``image(z) = g(q(p, z))`` is ``C^inf`` in ``z``
and takes values in ``[0, 1)``, so the family is an :class:`ImmersedManifold` of
dimension ``k = len(pose)`` in ``R^(h w)`` whose tangent space (``tangent_basis_at(z)``)
is exact: the forward-mode Jacobian of the renderer. It is the ground truth the
learned tangent spaces of an autoencoder are checked against (docs/theory.md, "Learned
ground truth on images").
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from manifold_lab._validation import check_finite, check_positive_int
from manifold_lab.manifolds.immersed import ImmersedManifold

__all__ = ["RenderedShape", "POSE_COORDINATES", "DEFAULT_GLYPH", "DEFAULT_RANGES"]

#: Pose coordinates, in the order of ``z``'s columns when all are used.
POSE_COORDINATES = ("x", "y", "log_scale", "rotation")
#: Strokes ``(c_1, c_2, w_1, w_2)`` of the default glyph (a bar, a stem and a dot, no
#: symmetry, so every pose coordinate moves the image): glyph units, image half-width 1.
DEFAULT_GLYPH = ((0.05, 0.25, 0.38, 0.09), (-0.28, -0.08, 0.09, 0.32), (0.28, -0.32, 0.11, 0.11))
#: Latent law: each used coordinate uniform on ``[-r, r]`` (rotation in radians).
DEFAULT_RANGES = {"x": 0.3, "y": 0.3, "log_scale": 0.25, "rotation": math.pi / 4}


class RenderedShape(ImmersedManifold):
    """Rendered images of a glyph with continuous pose parameters; exact tangent spaces.

    Parameters
    ----------
    image_size : int or (h, w)
        Rendered image size (28 by default); ``ambient_dim = h w``.
    pose : sequence of str
        Which of ``POSE_COORDINATES`` vary (the others stay at 0); their number is
        the intrinsic dimension ``k``.
    ranges : dict, optional
        Half-width ``r`` of the uniform latent law per coordinate (``DEFAULT_RANGES``).
    glyph : sequence of (c_1, c_2, w_1, w_2), optional
        Strokes of the glyph (``DEFAULT_GLYPH``); widths > 0.

    Notes
    -----
    ``embed(z) : [n, k] -> [n, h w]`` renders in ``z``'s dtype; ``sample_with_latent``
    returns images and their poses. There is no closed-form chart (pose from
    image), so use ``tangent_basis_at(z)`` with the pose of each image.
    ``to_images(x)`` reshapes ``[..., h w]`` to ``[..., 1, h, w]``.
    """

    def __init__(self, image_size: int | Sequence[int] = 28, *, pose: Sequence[str] = POSE_COORDINATES,
                 ranges: dict[str, float] | None = None,
                 glyph: Sequence[Sequence[float]] = DEFAULT_GLYPH) -> None:
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        check_positive_int("image height", h, minimum=2)
        check_positive_int("image width", w, minimum=2)
        pose = tuple(pose)
        unknown = [p for p in pose if p not in POSE_COORDINATES]
        if unknown or not pose or len(set(pose)) != len(pose):
            raise ValueError(f"pose must be distinct names from {list(POSE_COORDINATES)}, got {list(pose)}")
        ranges = {**DEFAULT_RANGES, **(ranges or {})}
        half_widths = torch.tensor([float(ranges[p]) for p in pose], dtype=torch.float64)
        if not bool(torch.isfinite(half_widths).all()) or bool((half_widths <= 0).any()):
            raise ValueError(f"ranges must be finite and > 0, got {[ranges[p] for p in pose]}")
        strokes = torch.as_tensor(glyph, dtype=torch.float64)
        if strokes.ndim != 2 or strokes.shape[1] != 4 or strokes.shape[0] < 1:
            raise ValueError(f"glyph must be a sequence of (c_1, c_2, w_1, w_2) strokes, got shape "
                             f"{list(strokes.shape)}")
        check_finite("glyph", strokes)
        if bool((strokes[:, 2:] <= 0).any()):
            raise ValueError("glyph stroke widths w_1, w_2 must be > 0")
        self.image_shape = (1, h, w)
        self.pose, self.half_widths, self.strokes = pose, half_widths, strokes
        self._columns = [POSE_COORDINATES.index(p) for p in pose]
        # Pixel centres on [-1, 1]^2; row 0 is the top of the image (p_2 = +1).
        p1 = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, dtype=torch.float64)
        p2 = torch.linspace(1 - 1 / h, -1 + 1 / h, h, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(p2, p1, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
        self.grid = grid  # [h w, 2] as (p_1, p_2)
        super().__init__(self.render, len(pose), h * w, latent_sampler=self._uniform_pose)

    def full_pose(self, z: torch.Tensor) -> torch.Tensor:
        """``[n, k]`` used coordinates -> ``[n, 4]`` (x, y, log_scale, rotation), zeros elsewhere."""
        full = torch.zeros(*z.shape[:-1], len(POSE_COORDINATES), dtype=z.dtype, device=z.device)
        return full.index_copy(-1, torch.tensor(self._columns, device=z.device), z)

    def render(self, z: torch.Tensor) -> torch.Tensor:
        """The image ``g(q(p, z))`` at every pixel (module docstring): ``[n, k] -> [n, h w]``."""
        full = self.full_pose(z)
        kw = dict(dtype=z.dtype, device=z.device)
        grid, strokes = self.grid.to(**kw), self.strokes.to(**kw)
        shift, scale, angle = full[:, None, 0:2], full[:, 2, None].exp(), full[:, 3, None]
        rel = grid[None] - shift  # [n, P, 2]
        cos, sin = angle.cos(), angle.sin()
        # q = R(-theta) (p - t) / s
        q1 = (cos * rel[..., 0] + sin * rel[..., 1]) / scale
        q2 = (-sin * rel[..., 0] + cos * rel[..., 1]) / scale
        d1 = (q1[..., None] - strokes[:, 0]) / strokes[:, 2]
        d2 = (q2[..., None] - strokes[:, 1]) / strokes[:, 3]
        ink = torch.exp(-0.5 * (d1.square() + d2.square())).sum(-1)
        return 1.0 - torch.exp(-ink)

    def _uniform_pose(self, n: int, *, generator=None, dtype=torch.float64, device="cpu") -> torch.Tensor:
        u = torch.rand(n, self.intrinsic_dim, generator=generator, dtype=torch.float64, device=device)
        return ((2 * u - 1) * self.half_widths.to(device)).to(dtype)

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., h w] -> [..., 1, h, w]``."""
        return x.reshape(*x.shape[:-1], *self.image_shape)

    def __repr__(self) -> str:
        return f"RenderedShape(image_shape={self.image_shape}, pose={list(self.pose)})"
