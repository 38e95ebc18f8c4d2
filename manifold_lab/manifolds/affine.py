"""``AffineSubspace``: the flat ``M = {c + F z : z in R^k}`` in ``R^d``."""

from __future__ import annotations

import torch

from manifold_lab.manifolds._analytic import EmbeddedManifold, check_dims
from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds.base import check_points

__all__ = ["AffineSubspace"]


class AffineSubspace(EmbeddedManifold):
    """A random k-dimensional affine subspace ``M = {c + F z}`` of ``R^d``.

    Parameters
    ----------
    intrinsic_dim : int
        ``k``, with ``1 <= k < d``.
    ambient_dim : int
        ``d``.
    seed : int
        Fixes the Haar-random frame ``F`` and the Gaussian offset (see ``_embedding``).

    Attributes
    ----------
    frame : Tensor, shape [d, k]
        Orthonormal float64 basis of the direction space; ``T_x M = range(F)`` everywhere.
    offset : Tensor, shape [d]
        float64 point of ``M``, the centre of the sampling measure. For a seeded
        subspace it is orthogonal to ``range(F)`` (the point of ``M`` nearest the
        origin).

    Notes
    -----
    Sampling measure: ``x = c + F z`` with ``z ~ N(0, I_k)`` (a flat has no uniform
    probability measure; the standard Gaussian in its own coordinates is the
    isotropic choice). ``nearest_point(x) = c + F F^T (x - c)``,
    ``distance(x) = |(I - F F^T)(x - c)|``.
    """

    def __init__(self, intrinsic_dim: int, ambient_dim: int, *, seed: int = 0):
        check_dims(intrinsic_dim, ambient_dim)
        emb = Embedding.random(ambient_dim, intrinsic_dim, seed)
        super().__init__(_canonical(emb), intrinsic_dim, seed)

    @classmethod
    def from_frame(cls, frame: torch.Tensor, offset: torch.Tensor | None = None) -> "AffineSubspace":
        """The affine subspace ``{offset + frame @ z}`` spanned by given orthonormal directions.

        Parameters
        ----------
        frame : Tensor, shape [d, k]
            Orthonormal columns (e.g. signal and distractor directions side by side), ``k < d``.
        offset : Tensor, shape [d], optional
            A point of the subspace and centre of the sampling measure (default:
            the origin); kept as given.
        """
        if not isinstance(frame, torch.Tensor) or frame.ndim != 2:
            raise ValueError("frame must be a 2-D tensor of shape [d, k] with orthonormal columns")
        check_dims(frame.shape[1], frame.shape[0])
        out = cls.__new__(cls)
        EmbeddedManifold.__init__(out, Embedding(frame, offset), frame.shape[1], None)
        return out

    @property
    def offset(self) -> torch.Tensor:
        return self._embedding.offset

    @property
    def length_scale(self) -> float:
        return 1.0 + float(self.offset.norm())

    def _sample_local(self, n, generator, device):
        return torch.randn(n, self._k, generator=generator, dtype=torch.float64, device=device)

    def _foot_local(self, y):
        return y, torch.ones(y.shape[:-1], dtype=torch.bool, device=y.device)

    def _tangent_local(self, foot):
        eye = torch.eye(self._k, dtype=foot.dtype, device=foot.device)
        return eye.expand(*foot.shape[:-1], self._k, self._k)

    def project_tangent(self, x, v, *, max_distance=None):
        """``P_T v = F F^T v`` (the same at every ``x``; ``x`` is still checked)."""
        self._checked_foot(x, max_distance)
        v = check_points("v", v, self.ambient_dim)
        frame, _ = self._embedding.cast(v.dtype, v.device)
        return ((v @ frame) @ frame.T).expand(torch.broadcast_shapes(x.shape, v.shape))


def _canonical(emb: Embedding) -> Embedding:
    """Same subspace, offset replaced by its component orthogonal to the frame."""
    offset = emb.offset - emb.frame @ (emb.frame.T @ emb.offset)
    return Embedding(emb.frame, offset)
