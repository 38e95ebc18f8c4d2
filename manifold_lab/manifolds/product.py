"""``Product``: the direct sum ``M_1 x ... x M_m`` of manifolds in mutually orthogonal subspaces.

The signal-distractor construction of docs/theory.md (Definition 3): factor ``i``
lives in ``R^{d_i}`` and is placed in ``R^d`` by the block ``P_i`` of one
orthonormal placement frame ``P = [P_1 ... P_m]`` (``d >= sum d_i``), so

    x = c + sum_i P_i y_i,   y_i in M_i,     T_x M = (+)_i P_i T_{y_i} M_i,

and the tangent basis is the block combination ``[P_1 U_1, ..., P_m U_m]``.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch

from manifold_lab._validation import check_float_dtype, check_generator, check_positive_int
from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds.base import Manifold, check_points, point_tolerance

__all__ = ["Product"]


class Product(Manifold):
    """Direct sum of manifolds placed in mutually orthogonal subspaces of ``R^d``.

    Parameters
    ----------
    factors : sequence of Manifold
        ``M_i`` in ``R^{d_i}``; at least two.
    ambient_dim : int, optional
        ``d >= sum d_i`` (default ``sum d_i``).
    seed : int, optional
        ``None`` (default): factor ``i`` occupies coordinates
        ``[sum_{j<i} d_j, sum_{j<=i} d_j)`` (the "mask" construction; the rest of
        ``R^d`` is zero). An integer: a Haar-random placement frame ``P [d, sum d_i]``
        (the "complementary subspaces" construction).

    Attributes
    ----------
    factors : tuple of Manifold
    placement : Embedding
        ``P`` and the shift ``c`` (zero unless ``transformed``).

    Notes
    -----
    Sampling measure: the product of the factors' measures (factors drawn one
    after another from the same generator). ``nearest_point``/``distance`` exist
    when every factor has them:
    ``dist(x)^2 = |(I - P P^T)(x - c)|^2 + sum_i dist_i(P_i^T (x - c))^2``.
    """

    def __init__(self, factors: Sequence[Manifold], ambient_dim: int | None = None, *,
                 seed: int | None = None):
        factors = tuple(factors)
        if len(factors) < 2 or not all(isinstance(f, Manifold) for f in factors):
            raise ValueError(f"factors must be a sequence of at least two Manifold objects, got {factors!r}")
        total = sum(f.ambient_dim for f in factors)
        d = total if ambient_dim is None else check_positive_int("ambient_dim", ambient_dim)
        if d < total:
            raise ValueError(f"ambient_dim must be >= the sum of the factors' ambient dims ({total}), got {d}")
        if seed is None:
            placement = Embedding(torch.eye(d, total, dtype=torch.float64))
        else:
            placement = Embedding.random(d, total, seed, with_offset=False)
        self.factors = factors
        self.placement = placement
        self.seed = seed
        edges = [0]
        for f in factors:
            edges.append(edges[-1] + f.ambient_dim)
        self._edges = edges

    @property
    def ambient_dim(self) -> int:
        return self.placement.ambient_dim

    @property
    def intrinsic_dim(self) -> int:
        return sum(f.intrinsic_dim for f in self.factors)

    @property
    def factor_frames(self) -> list[torch.Tensor]:
        """The blocks ``P_i``, each ``[d, d_i]`` float64: the subspace of factor ``i``."""
        return [self.placement.frame[:, a:b] for a, b in zip(self._edges, self._edges[1:])]

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Factor coordinates ``y_i = P_i^T (x - c)``: ``[..., d] -> [[..., d_i], ...]``."""
        y = self.placement.to_local(check_points("x", x, self.ambient_dim))
        return [y[..., a:b] for a, b in zip(self._edges, self._edges[1:])]

    def combine(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Inverse of ``split``: ``x = c + sum_i P_i y_i``."""
        return self.placement.from_local(torch.cat(list(parts), -1))

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
        check_positive_int("n", n)
        check_generator(generator, device)
        check_float_dtype("dtype", dtype)
        parts = [f.sample(n, generator=generator, dtype=torch.float64, device=device) for f in self.factors]
        return self.combine(parts).to(dtype)

    def _check_in_span(self, x: torch.Tensor, max_distance: float | None) -> None:
        resid = torch.linalg.vector_norm(self.placement.residual(x), dim=-1)
        tol = point_tolerance(x, max_distance)
        if bool((resid > tol).any()):
            raise ValueError(f"{int((resid > tol).sum())} point(s) of x lie outside the span of the "
                             f"Product's factor subspaces (largest distance {float(resid.max()):.3g} > "
                             "tolerance); pass points on the manifold or raise max_distance=")

    def tangent_basis(self, x: torch.Tensor, *, max_distance: float | None = None) -> torch.Tensor:
        """Block basis ``[P_1 U_1(y_1), ..., P_m U_m(y_m)]``, shape [..., d, sum k_i].

        ``max_distance`` applies to the part of ``x`` outside ``range(P)`` and is
        passed on to every factor.
        """
        parts = self.split(x)
        self._check_in_span(x, max_distance)
        blocks = []
        for factor, frame, y in zip(self.factors, self.factor_frames, parts):
            basis = factor.tangent_basis(y, max_distance=max_distance)
            blocks.append(frame.to(x.device, x.dtype) @ basis)
        return torch.cat(blocks, -1)

    def project_tangent(self, x, v, *, max_distance=None):
        """``P_T v = sum_i P_i P_T^{(i)}(y_i) P_i^T v`` through the factors' own projectors."""
        parts = self.split(x)
        self._check_in_span(x, max_distance)
        v = check_points("v", v, self.ambient_dim)
        out = 0
        for factor, frame, y in zip(self.factors, self.factor_frames, parts):
            frame = frame.to(v.device, v.dtype)
            out = out + factor.project_tangent(y, v @ frame, max_distance=max_distance) @ frame.T
        return out

    def nearest_point(self, x: torch.Tensor) -> torch.Tensor:
        """``c + sum_i P_i nearest_i(y_i)`` (needs every factor's closed form)."""
        return self.combine([f.nearest_point(y) for f, y in zip(self.factors, self.split(x))])

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.split(x)
        sq = self.placement.residual(x).square().sum(-1)
        for f, y in zip(self.factors, parts):
            sq = sq + f.distance(y).square()
        return torch.sqrt(sq)

    def transformed(self, rotation: torch.Tensor, shift: torch.Tensor | None = None) -> "Product":
        """The image under ``x -> rotation @ x + shift`` (``rotation`` orthogonal ``[d, d]``)."""
        out = copy.copy(self)
        out.placement = self.placement.transformed(rotation, shift)
        return out

    def __repr__(self) -> str:
        inner = ", ".join(repr(f) for f in self.factors)
        return f"Product([{inner}], ambient_dim={self.ambient_dim})"

