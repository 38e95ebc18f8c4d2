"""Input checks specific to the metric core: tangent bases, scales, point layouts.

Generic checks (finite values, positive numbers, generators) come from
:mod:`manifold_lab._validation`; this module adds what only the metrics need.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from manifold_lab._validation import check_finite, check_min_ndim, check_positive

__all__ = [
    "orthonormality_tolerance",
    "check_basis",
    "as_scales",
    "flatten_points",
]


#: Half-precision inputs are measured in this dtype: squaring a float16 value of
#: size 1e-4 underflows to 0 (float16's smallest subnormal is 6e-8), which made
#: ``alignment_ratio`` +inf and ``tangent_fraction`` far too small.
_HALF_WORKING_DTYPE = torch.float32


def working_dtype(t: torch.Tensor) -> torch.dtype:
    """``t.dtype``, or float32 for float16/bfloat16 (whose squares under/overflow)."""
    return _HALF_WORKING_DTYPE if t.dtype in (torch.float16, torch.bfloat16) else t.dtype


def orthonormality_tolerance(dtype: torch.dtype, ambient_dim: int) -> float:
    """Largest accepted ``max |BᵀB − I|`` for a basis in ``dtype`` with ``ambient_dim`` rows.

    ``ambient_dim · eps`` bounds the rounding error of one length-``d`` inner
    product of unit vectors (Higham's ``γ_d``), so an exactly orthonormal basis
    rounded to ``dtype`` always passes; ``sqrt(eps)`` is the slack for the
    orthonormalisation that produced it (Householder QR or Gram–Schmidt with
    re-orthogonalisation reach ``O(d·k·eps)``, far below ``sqrt(eps)``), while a
    basis that was never orthonormalised (a raw Jacobian, an unnormalised
    column) is off by ``O(1)`` and fails.
    """
    eps = torch.finfo(dtype).eps
    return math.sqrt(eps) + ambient_dim * eps


def check_basis(
    basis: torch.Tensor,
    ambient_dim: int,
    *,
    name: str = "basis",
    max_intrinsic_dim: int | None = None,
) -> torch.Tensor:
    """Check that ``basis`` has shape ``[..., d, k]`` with orthonormal columns.

    Parameters
    ----------
    basis : Tensor, shape [..., d, k]
        Columns span the tangent space ``T_x M``; ``BᵀB = I_k`` is required
        because every projector below is ``P_T = B Bᵀ``.
    ambient_dim : int
        Expected ``d``.
    max_intrinsic_dim : int, optional
        Largest allowed ``k`` (default ``d``).

    Returns
    -------
    Tensor
        ``basis`` unchanged.
    """
    if not isinstance(basis, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [..., d, k], got {type(basis).__name__}")
    check_min_ndim(name, basis, 2, "[..., d, k]")
    if not basis.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {basis.dtype}")
    check_finite(name, basis)
    d, k = basis.shape[-2], basis.shape[-1]
    if d != ambient_dim:
        raise ValueError(
            f"{name} must have shape [..., {ambient_dim}, k] (rows = ambient dimension "
            f"{ambient_dim}), got shape {list(basis.shape)}"
        )
    kmax = ambient_dim if max_intrinsic_dim is None else max_intrinsic_dim
    if not 1 <= k <= kmax:
        raise ValueError(
            f"{name} must have between 1 and {kmax} columns (the intrinsic dimension), "
            f"got shape {list(basis.shape)}"
        )
    gram = basis.transpose(-1, -2) @ basis
    eye = torch.eye(k, dtype=basis.dtype, device=basis.device)
    err = float((gram - eye).abs().max()) if gram.numel() else 0.0
    tol = orthonormality_tolerance(basis.dtype, d)
    if not err <= tol:
        raise ValueError(
            f"{name} columns must be orthonormal (max |BᵀB − I| = {err:.3g} > tolerance "
            f"{tol:.3g} for {basis.dtype}); orthonormalise it, e.g. torch.linalg.qr(basis).Q"
        )
    return basis


def as_scales(
    name: str,
    scales: float | Sequence[float] | torch.Tensor,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Return ``scales`` (noise levels σ or steps ε) as a finite, positive 1-D tensor."""
    if isinstance(scales, torch.Tensor):
        t = scales.detach()
    else:
        try:
            t = torch.as_tensor(scales, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{name} must be a number or a 1-D sequence of numbers, got {scales!r}") from exc
    if t.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence, got shape {list(t.shape)}")
    check_positive(name, t)
    return t.reshape(-1).to(dtype=dtype, device=device)


def flatten_points(x: torch.Tensor, basis: torch.Tensor, *, name: str = "x") -> torch.Tensor:
    """Return points as ``[n, D]`` and check ``basis`` against them.

    ``x`` may be ``[n, d]`` or image-shaped ``[n, c, h, w]`` (any trailing shape);
    ``D`` is the product of the trailing dimensions. ``n = 0`` is allowed (as for the
    other metrics: an empty batch gives empty per-point results and NaN means). ``basis`` must be
    ``[n, D, k]`` (one basis per point) or ``[D, k]`` (shared, e.g. an affine
    subspace). Orthonormality is checked in the basis's own dtype; callers then
    move it to ``x``'s dtype and device.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [n, d] or [n, c, h, w], got {type(x).__name__}")
    check_min_ndim(name, x, 2, "[n, d] or [n, c, h, w]")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    check_finite(name, x)
    flat = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # explicit D: also for n = 0
    check_basis(basis, flat.shape[1])
    if basis.ndim == 3 and basis.shape[0] != x.shape[0]:
        raise ValueError(
            f"basis must have shape [n, D, k] with n = {x.shape[0]} (one basis per point) "
            f"or [D, k], got shape {list(basis.shape)}"
        )
    if basis.ndim > 3:
        raise ValueError(f"basis must have shape [n, D, k] or [D, k], got shape {list(basis.shape)}")
    return flat
