"""On- and off-manifold robustness (docs/theory.md, Definition 1).

    R_T(σ) = E[(f(x + P_T u) − f(x))²],   R_N(σ) = E[(f(x + P_N u) − f(x))²],
    u ~ N(0, σ² I_d).

Both are *inverse* robustness (larger = less robust), as the paper plots them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from manifold_lab._validation import check_generator, check_positive_int
from manifold_lab.metrics._checks import as_scales, flatten_points, working_dtype
from manifold_lab.metrics._sweep import RobustnessResult, perturbation_sweep

__all__ = ["ManifoldRobustness", "manifold_robustness"]


@dataclass(frozen=True)
class ManifoldRobustness(RobustnessResult):
    """Estimates of Definition 1 (see :class:`RobustnessResult` for the fields).

    ``.on`` is ``R_T(σ)`` and ``.off`` is ``R_N(σ)``, shape ``[S]``;
    ``.ratio = R_N / R_T`` (ratio of the point-averaged means).
    """

    @property
    def sigmas(self) -> torch.Tensor:
        """Noise levels σ, shape [S]."""
        return self.scales


def _squared_change(out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    if out.ndim != 1:
        raise ValueError(
            f"f must return one scalar per input, shape [m], got {list(out.shape)}; wrap a "
            "classifier with metrics.scalar_fn(model, y, target=...)"
        )
    diff = out - clean
    return diff.to(working_dtype(diff)).square()


def check_sweep_args(
    x: torch.Tensor, generator: torch.Generator | None, n_samples: int, chunk_size: int | None, *, name: str,
    antithetic: bool = False,
) -> None:
    """Shared checks of the Monte-Carlo arguments."""
    check_positive_int(name, n_samples, minimum=2 if antithetic else 1)
    if antithetic and n_samples % 2:
        raise ValueError(f"{name} must be even with antithetic=True (draws come in ± pairs), got {n_samples}")
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
    check_generator(generator, x.device)


def robustness_values(
    f: Callable,
    x: torch.Tensor,
    basis: torch.Tensor,
    sigmas: float | Sequence[float] | torch.Tensor,
    *,
    n_samples: int,
    generator: torch.Generator | None,
    chunk_size: int | None,
    antithetic: bool,
    probe: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per-draw squared changes ``[2, n, M, S]`` behind :func:`manifold_robustness`.

    Returns ``(sigmas [S], values [2, n, M, S], lin [2, n, M] or None)`` where
    ``values[0, i, m, s] = (f(x_i + σ_s P_T u_m) − f(x_i))²`` (``values[1]``
    with ``P_N``) and ``lin`` holds ``⟨probe_i, P u_m⟩`` for unit-σ draws.
    """
    flat = flatten_points(x, basis)
    check_sweep_args(x, generator, n_samples, chunk_size, name="n_samples", antithetic=antithetic)
    basis = basis.to(dtype=x.dtype, device=x.device)
    sig = as_scales("sigmas", sigmas, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        values, lin = perturbation_sweep(
            f, x.detach(), flat.detach(), basis.detach(), sig, _squared_change,
            n_draws=n_samples, generator=generator, chunk_size=chunk_size, unit=False,
            antithetic=antithetic, probe=probe,
        )
    return sig, values, lin


def manifold_robustness(
    f: Callable,
    x: torch.Tensor,
    basis: torch.Tensor,
    sigmas: float | Sequence[float] | torch.Tensor,
    *,
    n_samples: int = 64,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    antithetic: bool = False,
) -> ManifoldRobustness:
    """Monte-Carlo estimate of on/off-manifold robustness (Definition 1).

    For each point ``x_i`` and draw ``m``, one ``u_m ~ N(0, I_D)`` is projected
    once, ``u_T = B Bᵀu_m`` and ``u_N = u_m − u_T``, and reused for every σ
    (``u_σ = σ·u_1``: common random numbers), so

        R̂_T(σ) = 1/M Σ_m (f(x_i + σ u_T) − f(x_i))²

    and likewise ``R̂_N`` — unbiased for ``R_T``/``R_N`` at every σ, with noise
    shared across σ so curves over σ are smooth. All ``n·M·S·2`` forward
    passes are batched (and chunked) under ``torch.no_grad``.

    Parameters
    ----------
    f : callable
        Per-example scalar, ``f(x [m, ...]) -> [m]``, e.g.
        ``metrics.scalar_fn(model, y, target="log_softmax")`` (which runs the
        model in eval mode and picks each point's label). A plain ``nn.Module``
        is called as is: put it in eval mode yourself.
    x : Tensor, shape [n, d] or [n, c, h, w]
        Points on the manifold (any trailing shape; ``D`` = its size).
    basis : Tensor, shape [n, D, k] or [D, k]
        Orthonormal tangent basis at each point (flattened layout for images),
        or one shared basis.
    sigmas : float, sequence or Tensor [S]
        Noise levels σ > 0.
    n_samples : int
        Draws ``M`` per point.
    generator : torch.Generator, optional
        Source of the draws (on ``x``'s device).
    chunk_size : int, optional
        Rows per forward call (rounded to a multiple of ``S``), fixed. Default:
        tuned from the measured time per row of the sweep's own calls (from 64
        rows, doubling while faster), capped at ``DEFAULT_CHUNK_ELEMENTS // D``
        rows (1M input numbers per call); see ``metrics._chunking``. The
        estimates do not depend on it.
    antithetic : bool
        Use ± pairs of draws (``n_samples`` even). The odd Taylor terms then
        cancel in every pair, which removes the ``O(σ³)`` Monte-Carlo noise of
        the ratio (used by :func:`theorem_3_1_table`); at small σ it halves the
        effective number of draws for ``R`` itself, so it is off by default.

    Returns
    -------
    ManifoldRobustness
        ``.sigmas``, ``.on`` (``R_T``), ``.off`` (``R_N``), ``.on_stderr``,
        ``.off_stderr`` (shape ``[S]``), ``.on_per_point``, ``.off_per_point``
        (``[n, S]``), ``.ratio`` (``R_N/R_T``), in ``x``'s dtype and device.
    """
    sig, values, _ = robustness_values(
        f, x, basis, sigmas, n_samples=n_samples, generator=generator,
        chunk_size=chunk_size, antithetic=antithetic,
    )
    return ManifoldRobustness._from_values(sig, values, antithetic)
