"""The abstract ``Manifold``: a smooth k-dimensional submanifold ``M`` of ``R^d``.

Every manifold offers the same small interface (DESIGN.md, "Public API"):
its dimensions, a sampling measure, an orthonormal tangent basis at a point,
and the tangent/normal projectors built from that basis,

    P_T(x) v = U U^T v,        P_N(x) v = v - P_T(x) v,

where ``U = tangent_basis(x)`` has orthonormal columns spanning ``T_x M``
(docs/theory.md, "Setup"). ``nearest_point`` and ``distance`` exist where a closed
form does; otherwise they raise ``NotImplementedError`` saying so.

Geometry is stored in float64 and cast to each input's dtype and device on use.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from manifold_lab._validation import check_finite, check_last_dim

__all__ = ["Manifold", "check_points", "default_max_distance", "point_tolerance", "ON_MANIFOLD_TOL_FACTOR"]

#: A point counts as "on the manifold" when its distance to it is at most
#: ``ON_MANIFOLD_TOL_FACTOR * sqrt(eps(dtype)) * length_scale``. ``sqrt(eps)`` is
#: the accuracy to which a point survives a few float operations and a cast
#: from float64 (float32: 3.5e-4, float64: 1.5e-8, relative); the factor 10 leaves
#: room for the rounding of ``d``-term dot products without admitting points a
#: visible distance away.
ON_MANIFOLD_TOL_FACTOR = 10.0


def default_max_distance(dtype: torch.dtype, length_scale: float) -> float:
    """The default ``max_distance`` of ``tangent_basis`` (see ``ON_MANIFOLD_TOL_FACTOR``)."""
    return ON_MANIFOLD_TOL_FACTOR * math.sqrt(torch.finfo(dtype).eps) * length_scale


def point_tolerance(x: torch.Tensor, max_distance: float | None, length_scale: float = 1.0) -> torch.Tensor:
    """Per-point on-manifold tolerance for ``x : [..., d]``, shape ``[...]`` (or a scalar).

    ``max_distance`` when given, else the relative default
    ``default_max_distance(x.dtype, 1) · (length_scale + |x|)``.
    """
    if max_distance is not None:
        if isinstance(max_distance, bool) or not isinstance(max_distance, (int, float)) \
                or math.isnan(max_distance) or max_distance < 0:
            # NaN compares false with every distance, so it would accept any point.
            raise ValueError(f"max_distance must be a number >= 0 (or None for the default), "
                             f"got {max_distance!r}")
        return torch.as_tensor(float(max_distance), dtype=x.dtype, device=x.device)
    return default_max_distance(x.dtype, 1.0) * (length_scale + torch.linalg.vector_norm(x, dim=-1))


def check_points(name: str, x: torch.Tensor, ambient_dim: int) -> torch.Tensor:
    """Validate points ``x : [..., d]``: a floating tensor, finite, last dim ``d``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [..., {ambient_dim}], "
                         f"got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (float32 or float64), "
                         f"got dtype {x.dtype}")
    check_last_dim(name, x, ambient_dim)
    return check_finite(name, x)


class Manifold(ABC):
    """A smooth ``k``-dimensional submanifold ``M`` of ``R^d``.

    Subclasses implement ``ambient_dim``, ``intrinsic_dim``, ``sample`` and
    ``tangent_basis``; the projectors are derived here from the basis and may be
    overridden by faster closed forms.
    """

    @property
    @abstractmethod
    def ambient_dim(self) -> int:
        """``d``, the dimension of the space ``R^d`` the manifold lives in."""

    @property
    @abstractmethod
    def intrinsic_dim(self) -> int:
        """``k``, the dimension of the manifold (``k < d``)."""

    @abstractmethod
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> torch.Tensor:
        """``n`` points drawn from the manifold's sampling measure.

        Returns
        -------
        Tensor, shape [n, d]
            Drawn in float64 with ``generator`` (which must live on ``device``),
            then cast to ``dtype``: the same generator state gives the same points
            in every dtype.
        """

    @abstractmethod
    def tangent_basis(self, x: torch.Tensor, *, max_distance: float | None = None) -> torch.Tensor:
        """Orthonormal basis of the tangent space ``T_x M``.

        Parameters
        ----------
        x : Tensor, shape [..., d]
            Points on the manifold.
        max_distance : float, optional
            How far ``x`` may be from ``M``; a point farther away raises
            ``ValueError``. Default: rounding level,
            ``default_max_distance(x.dtype, length_scale)``. Where the manifold
            has a nearest-point map, the basis returned for an off-manifold ``x``
            is the one at ``nearest_point(x)``.

        Returns
        -------
        Tensor, shape [..., d, k]
            ``U`` with ``U^T U = I_k`` and ``range(U) = T_x M``.
        """

    def project_tangent(self, x: torch.Tensor, v: torch.Tensor, *,
                        max_distance: float | None = None) -> torch.Tensor:
        """Tangent part ``P_T(x) v = U (U^T v)`` of ``v`` at ``x``.

        Parameters
        ----------
        x : Tensor, shape [..., d]
            Points on the manifold.
        v : Tensor, shape [..., d]
            Vectors, batch dims broadcast against those of ``x``.
        max_distance : float, optional
            Passed to ``tangent_basis``.

        Returns
        -------
        Tensor, shape [..., d] (broadcast batch shape)
        """
        v = check_points("v", v, self.ambient_dim)
        basis = self.tangent_basis(x, max_distance=max_distance).to(v.dtype)
        coords = torch.einsum("...dk,...d->...k", basis, v)
        return torch.einsum("...dk,...k->...d", basis, coords)

    def project_normal(self, x: torch.Tensor, v: torch.Tensor, *,
                       max_distance: float | None = None) -> torch.Tensor:
        """Normal part ``P_N(x) v = v - P_T(x) v`` of ``v`` at ``x``.

        Same arguments and shapes as ``project_tangent``.
        """
        return v - self.project_tangent(x, v, max_distance=max_distance)

    def nearest_point(self, x: torch.Tensor) -> torch.Tensor:
        """Closest point of ``M`` to ``x`` (``[..., d] -> [..., d]``), where a closed form exists."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form nearest point; "
            "use a manifold with one (AffineSubspace, Sphere, Torus, Product of those)"
        )

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """Euclidean distance from ``x`` to ``M`` (``[..., d] -> [...]``), where a closed form exists."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form distance to the manifold; "
            "use a manifold with one (AffineSubspace, Sphere, Torus, Product of those)"
        )

    def transformed(self, rotation: torch.Tensor, shift: torch.Tensor | None = None) -> "Manifold":
        """The image of ``M`` under the isometry ``x -> rotation @ x + shift``.

        Parameters
        ----------
        rotation : Tensor, shape [d, d]
            Orthogonal matrix.
        shift : Tensor, shape [d], optional
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement transformed()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(intrinsic_dim={self.intrinsic_dim}, ambient_dim={self.ambient_dim})"
