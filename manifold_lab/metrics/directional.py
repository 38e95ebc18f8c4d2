"""The paper's directional variant of on/off-manifold robustness, for vector outputs.

    D_T(ε) = E_v[ dist(z(x + ε v_T), z(x)) ],   v_T = P_T u / ‖P_T u‖,
    D_N(ε) = E_v[ dist(z(x + ε v_N), z(x)) ],   v_N = P_N u / ‖P_N u‖,  u ~ N(0, I_D),

with ``z`` the model's output vector (logits) and ``dist`` the paper's
``‖softmax(z') − softmax(z)‖₁`` or the squared logit change ``‖z' − z‖²``.
Unlike Definition 1 the step has the same length ``ε`` on and off the
manifold, so the two variants differ in scale by the dimension split
(``E‖P_T u‖² = kσ²`` versus ``E‖P_N u‖² = (d−k)σ²``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from manifold_lab.metrics._checks import as_scales, check_basis, flatten_points
from manifold_lab.metrics._sweep import RobustnessResult, perturbation_sweep
from manifold_lab.metrics.gradients import eval_mode
from manifold_lab.metrics.robustness import check_sweep_args

__all__ = ["DirectionalRobustness", "directional_robustness", "DISTANCES"]

DISTANCES = ("softmax_l1", "squared_logit")


@dataclass(frozen=True)
class DirectionalRobustness(RobustnessResult):
    """Estimates of the directional variant (fields as :class:`RobustnessResult`).

    ``.on`` is ``D_T(ε)``, ``.off`` is ``D_N(ε)``, shape ``[S]``.
    """

    @property
    def eps(self) -> torch.Tensor:
        """Step sizes ε, shape [S]."""
        return self.scales


def _softmax_l1(out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    if out.ndim != 2:
        raise ValueError(f"distance='softmax_l1' needs outputs of shape [m, C], got {list(out.shape)}")
    return (torch.softmax(out, dim=1) - torch.softmax(clean, dim=1)).abs().sum(1)


def _squared_logit(out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    return (out - clean).reshape(out.shape[0], -1).square().sum(1)


def _resolve_distance(distance: str | Callable) -> Callable:
    if callable(distance):
        def checked(out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
            d = distance(out, clean)
            if not isinstance(d, torch.Tensor) or d.shape != (out.shape[0],):
                shape = list(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__
                raise ValueError(f"distance must return shape [{out.shape[0]}], got {shape}")
            return d
        return checked
    if distance == "softmax_l1":
        return _softmax_l1
    if distance == "squared_logit":
        return _squared_logit
    raise ValueError(f"distance must be one of {DISTANCES} or a callable (out_pert, out_clean) -> [m], got {distance!r}")


def directional_robustness(
    model_or_fn: Callable,
    x: torch.Tensor,
    basis: torch.Tensor,
    eps: float | Sequence[float] | torch.Tensor,
    *,
    n_directions: int = 8,
    distance: str | Callable = "softmax_l1",
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> DirectionalRobustness:
    """The paper's unit-direction sensitivity at step sizes ε (module docstring).

    Each point gets ``n_directions`` fresh Gaussian draws; the tangent and the
    normal part of each draw are normalised to unit length and used at **every**
    ε (common random numbers: differences between ε are not noise). Sensitivity
    is averaged over the directions — the paper's released code used a single
    direction per image for all ε, whose noise does not average out.

    Parameters
    ----------
    model_or_fn : callable
        ``model(x [m, ...]) -> outputs [m, C]``; an ``nn.Module`` is run in
        eval mode (every submodule's mode restored after).
    x : Tensor, shape [n, d] or [n, c, h, w]
    basis : Tensor, shape [n, D, k] or [D, k]
        Orthonormal tangent basis, ``1 ≤ k < D`` (a normal direction must exist).
    eps : float, sequence or Tensor [S]
        Step lengths ε > 0.
    n_directions : int
        Directions per point (each gives one tangent and one normal direction).
    distance : {"softmax_l1", "squared_logit"} or callable
        ``"softmax_l1"``: ``‖softmax(z') − softmax(z)‖₁`` (the paper's);
        ``"squared_logit"``: ``‖z' − z‖²``; or ``callable(out_pert, out_clean) -> [m]``.
    generator : torch.Generator, optional
    chunk_size : int, optional
        Rows per forward call (as in :func:`manifold_robustness`).

    Returns
    -------
    DirectionalRobustness
        ``.eps``, ``.on``, ``.off``, their standard errors, per-point values, ``.ratio``.
    """
    flat = flatten_points(x, basis)
    check_basis(basis, flat.shape[1], max_intrinsic_dim=flat.shape[1] - 1)
    check_sweep_args(x, generator, n_directions, chunk_size, name="n_directions")
    dist = _resolve_distance(distance)
    basis = basis.to(dtype=x.dtype, device=x.device)
    steps = as_scales("eps", eps, dtype=x.dtype, device=x.device)
    with torch.no_grad(), eval_mode(model_or_fn):
        values, _ = perturbation_sweep(
            model_or_fn, x.detach(), flat.detach(), basis.detach(), steps, dist,
            n_draws=n_directions, generator=generator, chunk_size=chunk_size, unit=True,
        )
    return DirectionalRobustness._from_values(steps, values)
