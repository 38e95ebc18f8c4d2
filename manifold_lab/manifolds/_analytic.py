"""Shared machinery of the analytic manifolds: local closed forms, isometrically embedded.

An ``EmbeddedManifold`` is a k-manifold ``L`` in local coordinates ``R^m``, placed
in ``R^d`` by an ``Embedding`` ``x = c + F y``. Since the embedding is an
isometry, with ``y = F^T (x - c)`` and ``r = (I - F F^T)(x - c)``:

    tangent_basis(x) = F @ U_L(y*),         dist(x, M)^2 = |r|^2 + dist(y, L)^2,
    nearest_point(x) = c + F y*,

where ``y*`` is the foot point of ``y`` on ``L`` and ``U_L`` the local orthonormal
tangent basis. Subclasses supply ``_sample_local``, ``_foot_local`` and
``_tangent_local``; everything is computed in the input's dtype.
"""

from __future__ import annotations

import copy
import math
from abc import abstractmethod

import torch

from manifold_lab._validation import check_float_dtype, check_generator, check_positive_int
from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds.base import Manifold, check_points, point_tolerance

__all__ = ["EmbeddedManifold", "check_dims"]


def check_dims(intrinsic_dim: int, ambient_dim: int, local_dim: int | None = None) -> None:
    """``1 <= k < d`` and, when the local space has ``m > k`` dims, ``m <= d``."""
    check_positive_int("intrinsic_dim", intrinsic_dim)
    check_positive_int("ambient_dim", ambient_dim)
    if intrinsic_dim >= ambient_dim:
        raise ValueError(f"intrinsic_dim must be < ambient_dim, got intrinsic_dim={intrinsic_dim} "
                         f">= ambient_dim={ambient_dim}; use a larger ambient_dim")
    if local_dim is not None and local_dim > ambient_dim:
        raise ValueError(f"this manifold needs a {local_dim}-dim flat to live in, but "
                         f"ambient_dim={ambient_dim}; use ambient_dim >= {local_dim}")


class EmbeddedManifold(Manifold):
    """A local closed-form manifold placed in ``R^d`` by an affine isometry."""

    #: Whether ``_foot_local`` is the exact nearest point (enables ``nearest_point``/``distance``).
    _closed_form_nearest = True
    #: Where the foot map is undefined, for the error message.
    _degenerate_where = "a degenerate position"

    def __init__(self, embedding: Embedding, intrinsic_dim: int, seed: int | None):
        self._embedding = embedding
        self._k = intrinsic_dim
        self.seed = seed

    # -- local closed forms (float64 or the input dtype) ------------------------------
    @abstractmethod
    def _sample_local(self, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
        """``[n, m]`` float64 local points from the sampling measure."""

    @abstractmethod
    def _foot_local(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(foot [..., m], defined bool[...])``: the point of ``L`` that ``y`` is referred to."""

    @abstractmethod
    def _tangent_local(self, foot: torch.Tensor) -> torch.Tensor:
        """``[..., m, k]`` orthonormal tangent basis of ``L`` at the local point ``foot``."""

    @property
    @abstractmethod
    def length_scale(self) -> float:
        """Size of the manifold plus ``|offset|``: sets the default on-manifold tolerance."""

    def _distance_local(self, y: torch.Tensor) -> torch.Tensor:
        """``dist(y, L)``, ``[...]``; overridden where it stays defined off the foot map's domain."""
        foot, _ = self._foot_local(y)
        return torch.linalg.vector_norm(y - foot, dim=-1)

    # -- public interface ---------------------------------------------------------------
    @property
    def ambient_dim(self) -> int:
        return self._embedding.ambient_dim

    @property
    def intrinsic_dim(self) -> int:
        return self._k

    @property
    def center(self) -> torch.Tensor:
        """``c``, shape ``[d]`` float64: the image of the local origin."""
        return self._embedding.offset

    @property
    def frame(self) -> torch.Tensor:
        """``F``, shape ``[d, m]`` float64, orthonormal: the local axes in ``R^d``."""
        return self._embedding.frame

    @property
    def embedding(self) -> Embedding:
        """The isometry ``y -> c + F y`` placing the local manifold in ``R^d``."""
        return self._embedding

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
        check_positive_int("n", n)
        check_generator(generator, device)
        check_float_dtype("dtype", dtype)
        y = self._sample_local(n, generator, device)
        return self._embedding.from_local(y).to(dtype)

    def _checked_foot(self, x: torch.Tensor, max_distance: float | None) -> torch.Tensor:
        """Local foot points of ``x`` after the one-line checks shared by every basis request."""
        x = check_points("x", x, self.ambient_dim)
        y = self._embedding.to_local(x)
        foot, defined = self._foot_local(y)
        name = type(self).__name__
        if not bool(defined.all()):
            raise ValueError(f"{int((~defined).sum())} point(s) of x have no unique nearest point on the "
                             f"{name} (they are at {self._degenerate_where}); pass points on the manifold")
        dist = torch.sqrt(self._embedding.residual(x).square().sum(-1)
                          + (y - foot).square().sum(-1))
        tol = point_tolerance(x, max_distance, self.length_scale)
        too_far = dist > tol
        if bool(too_far.any()):
            raise ValueError(f"{int(too_far.sum())} point(s) of x lie off the {name} (largest distance "
                             f"{float(dist.max()):.3g} > tolerance); pass points on the manifold or "
                             "raise max_distance= to use the foot point's tangent space")
        return foot

    def tangent_basis(self, x: torch.Tensor, *, max_distance: float | None = None) -> torch.Tensor:
        foot = self._checked_foot(x, max_distance)
        frame, _ = self._embedding.cast(x.dtype, x.device)
        return frame @ self._tangent_local(foot)

    def nearest_point(self, x: torch.Tensor) -> torch.Tensor:
        """Closest point of ``M`` to ``x``: ``c + F y*`` (``[..., d] -> [..., d]``).

        Raises ``ValueError`` where it is not unique (e.g. the sphere centre).
        """
        if not self._closed_form_nearest:
            return super().nearest_point(x)
        foot = self._checked_foot(x, math.inf)
        return self._embedding.from_local(foot)

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """``dist(x, M) = sqrt(|(I - F F^T)(x - c)|^2 + dist(F^T (x - c), L)^2)``, ``[..., d] -> [...]``."""
        if not self._closed_form_nearest:
            return super().distance(x)
        x = check_points("x", x, self.ambient_dim)
        y = self._embedding.to_local(x)
        return torch.sqrt(self._embedding.residual(x).square().sum(-1)
                          + self._distance_local(y).square())

    def transformed(self, rotation: torch.Tensor, shift: torch.Tensor | None = None) -> "EmbeddedManifold":
        """The image of ``M`` under the isometry ``x -> rotation @ x + shift``.

        Parameters
        ----------
        rotation : Tensor, shape [d, d]
            Orthogonal matrix.
        shift : Tensor, shape [d], optional
        """
        out = copy.copy(self)
        out._embedding = self._embedding.transformed(rotation, shift)
        return out
