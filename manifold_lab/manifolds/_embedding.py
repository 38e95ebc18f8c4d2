"""Seeded random isometric embeddings ``y -> offset + frame @ y`` of ``R^m`` into ``R^d``.

Every analytic manifold is defined in small local coordinates ``y in R^m``
(``m = k`` for an affine subspace, ``k + 1`` for a k-sphere, 3 for the torus and
the Swiss roll) and placed in ``R^d`` by an affine isometry

    x = c + F y,        y = F^T (x - c),        F^T F = I_m,

with ``F`` Haar-distributed (QR of a Gaussian matrix with the sign of ``diag(R)``
fixed, so the law is exactly uniform on the Stiefel manifold) and ``c`` Gaussian.
Both come from one ``torch.Generator`` seeded with the manifold's ``seed``: same
seed, same manifold, on every machine.
"""

from __future__ import annotations

import math

import torch

from manifold_lab._validation import check_finite

__all__ = ["Embedding", "OFFSET_SCALE", "FRAME_TOL", "FRAME_EXACT_TOL"]

#: Expected norm of a random offset: ``c ~ N(0, OFFSET_SCALE^2 I_d / d)``, so
#: ``E|c|^2 = OFFSET_SCALE^2`` whatever ``d`` is (the manifold is not centred at
#: the origin, which would hide sign/offset bugs, nor far away from it).
OFFSET_SCALE = 1.0

#: A user-supplied frame must satisfy ``max|F^T F - I| <= FRAME_TOL``: loose enough
#: for a float32 frame (rounding ~1e-7 per entry, summed over ``d`` terms), tight
#: enough to reject a frame that was never orthonormalised.
FRAME_TOL = 1e-4

#: Frames already orthonormal to float64 rounding (a few ulps, summed over ``d``) are kept
#: bit-for-bit, so e.g. a coordinate-block frame stays exactly 0/1.
FRAME_EXACT_TOL = 1e-13


def _seeded_generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


class Embedding:
    """An affine isometry ``R^m -> R^d``, ``y -> offset + frame @ y`` (stored in float64).

    Parameters
    ----------
    frame : Tensor, shape [d, m]
        Orthonormal columns (checked to ``FRAME_TOL``; a frame coarser than
        ``FRAME_EXACT_TOL``, e.g. float32, is polished to float64 orthonormality
        by the polar factor ``U V^T`` of its SVD, the nearest orthonormal frame).
    offset : Tensor, shape [d], optional
        Image of ``y = 0``; zero by default.
    """

    def __init__(self, frame: torch.Tensor, offset: torch.Tensor | None = None):
        frame = check_finite("frame", frame)
        if frame.ndim != 2 or frame.shape[1] > frame.shape[0] or frame.shape[1] < 1:
            raise ValueError(f"frame must have shape [d, m] with 1 <= m <= d, got {list(frame.shape)}")
        frame = frame.detach().to("cpu", torch.float64)
        gram_err = float((frame.T @ frame - torch.eye(frame.shape[1], dtype=torch.float64)).abs().max())
        if gram_err > FRAME_TOL:
            raise ValueError(f"frame columns must be orthonormal (max |F^T F - I| = {gram_err:.2e} > "
                             f"{FRAME_TOL}); orthonormalise it, e.g. torch.linalg.qr(frame).Q")
        if gram_err > FRAME_EXACT_TOL:
            u, _, vh = torch.linalg.svd(frame, full_matrices=False)
            frame = u @ vh
        self.frame = frame
        d = frame.shape[0]
        if offset is None:
            offset = torch.zeros(d, dtype=torch.float64)
        offset = check_finite("offset", offset)
        if offset.shape != (d,):
            raise ValueError(f"offset must have shape [{d}] to match frame [d, m], got {list(offset.shape)}")
        self.offset = offset.detach().to("cpu", torch.float64)
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def random(cls, ambient_dim: int, local_dim: int, seed: int, *, with_offset: bool = True) -> "Embedding":
        """A Haar-random frame ``[d, m]`` and (optionally) a Gaussian offset, from ``seed``."""
        gen = _seeded_generator(seed)
        gauss = torch.randn(ambient_dim, local_dim, generator=gen, dtype=torch.float64)
        q, r = torch.linalg.qr(gauss)
        # Fixing sign(diag R) makes Q exactly Haar (QR alone is biased by its sign convention).
        signs = torch.sign(torch.diagonal(r))
        signs[signs == 0] = 1.0
        frame = q * signs
        offset = None
        if with_offset:
            offset = torch.randn(ambient_dim, generator=gen, dtype=torch.float64) * (
                OFFSET_SCALE / math.sqrt(ambient_dim))
        return cls(frame, offset)

    @property
    def ambient_dim(self) -> int:
        return self.frame.shape[0]

    @property
    def local_dim(self) -> int:
        return self.frame.shape[1]

    def cast(self, dtype: torch.dtype, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(frame, offset)`` in ``dtype`` on ``device`` (cached per pair)."""
        key = (dtype, torch.device(device))
        if key not in self._cache:
            self._cache[key] = (self.frame.to(device=key[1], dtype=dtype),
                                self.offset.to(device=key[1], dtype=dtype))
        return self._cache[key]

    def to_local(self, x: torch.Tensor) -> torch.Tensor:
        """``y = F^T (x - c)``: ``[..., d] -> [..., m]``."""
        frame, offset = self.cast(x.dtype, x.device)
        return (x - offset) @ frame

    def from_local(self, y: torch.Tensor) -> torch.Tensor:
        """``x = c + F y``: ``[..., m] -> [..., d]``."""
        frame, offset = self.cast(y.dtype, y.device)
        return y @ frame.T + offset

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """Component of ``x - c`` orthogonal to ``range(F)``: ``(I - F F^T)(x - c)``, ``[..., d]``."""
        frame, offset = self.cast(x.dtype, x.device)
        centred = x - offset
        return centred - (centred @ frame) @ frame.T

    def transformed(self, rotation: torch.Tensor, shift: torch.Tensor | None = None) -> "Embedding":
        """The embedding followed by ``x -> rotation @ x + shift`` (``rotation`` orthogonal ``[d, d]``)."""
        rotation = rotation.detach().to("cpu", torch.float64)
        d = self.ambient_dim
        if rotation.shape != (d, d):
            raise ValueError(f"rotation must have shape [{d}, {d}], got {list(rotation.shape)}")
        new_offset = rotation @ self.offset
        if shift is not None:
            new_offset = new_offset + shift.detach().to("cpu", torch.float64)
        return Embedding(rotation @ self.frame, new_offset)
