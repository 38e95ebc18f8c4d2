"""On-manifold gradient alignment (docs/theory.md, Definition 2) and score cosines.

All functions are pure tensor maps, batched over any leading dimensions, in the
dtype and on the device of their inputs (float16/bfloat16 inputs are computed and
returned in float32, see ``working_dtype``).
"""

from __future__ import annotations

import math
import warnings

import torch

from manifold_lab._validation import check_finite, check_min_ndim
from manifold_lab.metrics._checks import check_basis, working_dtype

__all__ = ["tangent_fraction", "alignment_ratio", "pooled_alignment", "score_cosine",
           "split_tangent_normal", "ZeroGradientWarning", "ZERO_POLICIES"]

#: What ``tangent_fraction`` / ``alignment_ratio`` do at a point where ``g = 0`` (the
#: direction is undefined, the value NaN): ``"warn"`` (NaN and a one-line
#: :class:`ZeroGradientWarning` saying how many), ``"nan"`` (NaN, deliberately silent:
#: callers that skip such points with ``nanmean``), ``"raise"`` (a ``ValueError``).
ZERO_POLICIES = ("warn", "nan", "raise")


class ZeroGradientWarning(RuntimeWarning):
    """Some gradients were exactly zero; their tangent fraction / alignment is NaN."""


def _zero_gradients(name: str, total_sq: torch.Tensor, zero: str) -> None:
    """Apply the ``zero`` policy to the points whose squared gradient norm is 0."""
    if zero not in ZERO_POLICIES:
        raise ValueError(f"zero must be one of {ZERO_POLICIES}, got {zero!r}")
    if zero == "nan":
        return
    n_zero = int((total_sq == 0).sum())
    if n_zero == 0:
        return
    message = (f"{name}: {n_zero} of {total_sq.numel()} gradient(s) are exactly zero, where the value is "
               "undefined (NaN); pass zero='nan' to accept that silently (and skip them with nanmean)")
    if zero == "raise":
        raise ValueError(message.split(";")[0] + "; zero='raise' refuses them")
    warnings.warn(message, ZeroGradientWarning, stacklevel=3)


def _check_grad(name: str, grad: torch.Tensor) -> torch.Tensor:
    if not isinstance(grad, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [..., d], got {type(grad).__name__}")
    check_min_ndim(name, grad, 1, "[..., d]")
    if not grad.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {grad.dtype}")
    return check_finite(name, grad)


def split_tangent_normal(grad: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared norms of the tangent and normal parts of ``grad``.

    Parameters
    ----------
    grad : Tensor, shape [..., d]
    basis : Tensor, shape [..., d, k]
        Orthonormal columns spanning ``T_x M`` (leading dims broadcast with ``grad``).

    Returns
    -------
    tangent_sq, normal_sq : Tensor, shape [...]
        ``‖P_T g‖² = ‖Bᵀg‖²`` and ``‖P_N g‖² = ‖g − B Bᵀg‖²``. The normal part is
        formed explicitly rather than as ``‖g‖² − ‖Bᵀg‖²``, which cancels
        catastrophically for nearly tangent gradients. Computed (and returned)
        in float32 for half-precision ``grad``, in ``grad``'s dtype otherwise.
    """
    _check_grad("grad", grad)
    if isinstance(basis, torch.Tensor) and basis.ndim >= 2 and basis.shape[-2] != grad.shape[-1]:
        raise ValueError(
            f"grad has {grad.shape[-1]} entries per point (shape {list(grad.shape)}) but basis has "
            f"{basis.shape[-2]} rows, the ambient dimension (shape {list(basis.shape)}); flatten image "
            "gradients to [n, c*h*w] and pass the basis of the same points")
    check_basis(basis, grad.shape[-1])
    grad = grad.to(working_dtype(grad))
    basis = basis.to(dtype=grad.dtype, device=grad.device)
    coords = (grad.unsqueeze(-2) @ basis).squeeze(-2)  # [..., k] = Bᵀg
    tangent = (basis @ coords.unsqueeze(-1)).squeeze(-1)
    normal = grad - tangent
    return coords.square().sum(-1), normal.square().sum(-1)


def tangent_fraction(grad: torch.Tensor, basis: torch.Tensor, *, zero: str = "warn") -> torch.Tensor:
    """Tangent fraction ``τ(x) = ‖P_T g‖ / ‖g‖ ∈ [0, 1]`` (companion of Definition 2).

    For a uniformly random direction ``E τ² = k/d``, so ``sqrt(k/d)`` is the
    chance baseline.

    Parameters
    ----------
    grad : Tensor, shape [..., d]
        Input gradients ``g = ∇f(x)``.
    basis : Tensor, shape [..., d, k]
        Orthonormal tangent basis at ``x``; leading dims broadcast with ``grad``.
    zero : {"warn", "nan", "raise"}
        What to do where ``g = 0`` (:data:`ZERO_POLICIES`); default: NaN and a
        :class:`ZeroGradientWarning`.

    Returns
    -------
    Tensor, shape [...]
        ``τ``; **NaN where g = 0** (the direction is undefined), so a zero
        gradient is never averaged in as 0 or 1 — use ``nanmean`` to skip such
        points deliberately (with ``zero="nan"``, silently).
    """
    tan_sq, nor_sq = split_tangent_normal(grad, basis)
    total = tan_sq + nor_sq
    _zero_gradients("tangent_fraction", total, zero)
    # 0/0 gives NaN on purpose (see Returns).
    return torch.sqrt(tan_sq / total)


def alignment_ratio(grad: torch.Tensor, basis: torch.Tensor, *, zero: str = "warn") -> torch.Tensor:
    """On-manifold gradient alignment ``A(x) = ‖P_N g‖² / ‖P_T g‖²`` (Definition 2).

    ``f`` is ρ-aligned at ``x`` when ``A(x) ≤ ρ``; smaller is more aligned.
    Theorem 3.1: ``A(x) = lim_{σ→0} R_N(σ)/R_T(σ)``.

    Parameters
    ----------
    grad : Tensor, shape [..., d]
    basis : Tensor, shape [..., d, k]
        Orthonormal tangent basis at ``x``; leading dims broadcast with ``grad``.
    zero : {"warn", "nan", "raise"}
        What to do where ``g = 0``, as for :func:`tangent_fraction`.

    Returns
    -------
    Tensor, shape [...]
        ``A``; ``+inf`` where ``P_T g = 0`` exactly but ``P_N g ≠ 0`` (the
        gradient is purely normal: maximally misaligned), NaN where ``g = 0``.
        Equivalently ``A = (1 − τ²)/τ²`` with ``τ`` the tangent fraction.
    """
    tan_sq, nor_sq = split_tangent_normal(grad, basis)
    _zero_gradients("alignment_ratio", tan_sq + nor_sq, zero)
    return nor_sq / tan_sq


def pooled_alignment(grad: torch.Tensor, basis: torch.Tensor) -> float:
    """Alignment pooled over points: ``Σ_i ‖P_N g_i‖² / Σ_i ‖P_T g_i‖²``.

    The σ → 0 limit of the point-averaged ratio ``R̄_N(σ)/R̄_T(σ)`` (Theorem 3.1
    summed over points). Unlike the mean of the per-point ``A(x_i)`` it is not
    dominated by the few points where ``P_T g`` is nearly zero, and a point with
    ``g = 0`` (e.g. a saturated softmax in float32) adds 0 to both sums, as it
    adds only ``O(σ⁴)`` to both ``R̄``: it is left out, not NaN.

    Parameters
    ----------
    grad : Tensor, shape [n, d]
    basis : Tensor, shape [n, d, k] or [d, k]

    Returns
    -------
    float
        Computed in float64 (the sums run over every point); ``+inf`` when every
        tangent part is zero but some normal part is not, NaN when all ``g = 0``.
    """
    tan_sq, nor_sq = split_tangent_normal(grad.to(torch.float64), basis)
    tan, nor = tan_sq.sum(), nor_sq.sum()
    if tan == 0:
        return math.inf if nor > 0 else math.nan
    return float(nor / tan)


def score_cosine(grad: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """Cosine similarity ``⟨g, s⟩ / (‖g‖ ‖s‖)`` between a gradient and a score.

    Parameters
    ----------
    grad : Tensor, shape [..., d]
        Model input gradients (flatten image gradients to ``[n, c·h·w]`` first,
        so the norm is per example).
    score : Tensor, shape [..., d]
        Reference direction, e.g. the exact ``∇ₓ log p(y|x)`` of the data or a
        (Tweedie) score estimate; leading dims broadcast with ``grad``.

    Returns
    -------
    Tensor, shape [...]
        Cosine in ``[-1, 1]``; NaN where either vector is zero.
    """
    _check_grad("grad", grad)
    _check_grad("score", score)
    if grad.shape[-1] != score.shape[-1]:
        raise ValueError(
            f"grad and score must share the last dimension, got shapes {list(grad.shape)} "
            f"and {list(score.shape)}"
        )
    grad = grad.to(working_dtype(grad))
    score = score.to(dtype=grad.dtype, device=grad.device)
    dot = (grad * score).sum(-1)
    norms = torch.linalg.vector_norm(grad, dim=-1) * torch.linalg.vector_norm(score, dim=-1)
    # Clamp only the rounding overshoot; 0/0 stays NaN on purpose.
    return (dot / norms).clamp(-1.0, 1.0)
