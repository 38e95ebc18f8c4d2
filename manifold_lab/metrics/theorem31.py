"""Theorem 3.1 checked numerically: ``R_N(σ)/R_T(σ) → A(x)`` as ``σ → 0``.

For every σ the table reports the Monte-Carlo ratio ``R̂_N/R̂_T`` of
Definition 1 beside the exact alignment ``A = ‖P_N g‖²/‖P_T g‖²``
(Definition 2, ``g = ∇f(x)`` by autograd), their relative error with its
Monte-Carlo standard error, and the *Taylor error*: the relative deviation of
the ratio from the first-order ratio ``Â = Σ (gᵀu_N)² / Σ (gᵀu_T)²`` built
from the same draws. With antithetic draws (``±u``) the odd terms cancel in
every pair, so ``R̂_P(σ) = σ² Q₂ + σ⁴ Q₄ + …`` exactly for the sampled draws
and the Taylor error is ``O(σ²)`` with no Monte-Carlo floor; the relative
error against the exact ``A`` instead levels off at the Monte-Carlo noise
(about ``2/√M`` for one point: each ``Q₂`` is a mean of ``M`` scaled χ²₁ values).

Over several points the table is *pooled* — ``R_N/R_T`` is the ratio of the
point-averaged ``R``'s (as :attr:`ManifoldRobustness.ratio`) and ``A`` is
``Σ_i ‖P_N g_i‖² / Σ_i ‖P_T g_i‖²``, its σ → 0 limit (Theorem 3.1 summed over
points) — and a per-point column gives the median of the pointwise errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from manifold_lab.metrics._sweep import draw_units
from manifold_lab.metrics.alignment import pooled_alignment, split_tangent_normal
from manifold_lab.metrics.gradients import scalar_gradient
from manifold_lab.metrics.robustness import robustness_values

__all__ = ["Theorem31Table", "theorem_3_1_table", "COLUMNS"]

#: Columns of every row, in display order.
COLUMNS = ("sigma", "R_T", "R_N", "ratio", "A", "rel_err", "rel_err_stderr", "taylor_rel_err", "point_rel_err_median")

_DOC_COLUMNS = {
    "sigma": "noise level σ",
    "R_T": "R̂_T(σ), mean over points and draws (Def. 1)",
    "R_N": "R̂_N(σ), mean over points and draws",
    "ratio": "R_N / R_T (pooled over points)",
    "A": "exact Σ‖P_N g‖² / Σ‖P_T g‖² over points (Def. 2; A(x) for one point)",
    "rel_err": "ratio / A − 1 (inf/NaN when A = 0)",
    "rel_err_stderr": "Monte-Carlo standard error of rel_err (delta method, points held fixed)",
    "taylor_rel_err": "|ratio / Â − 1|, Â = Σ(gᵀu_N)²/Σ(gᵀu_T)² over the same draws: O(σ²), no MC floor",
    "point_rel_err_median": "median over points of |R̂_N/R̂_T / A(x_i) − 1|",
}


@dataclass(frozen=True)
class Theorem31Table:
    """Rows of the Theorem 3.1 check, one per σ.

    Attributes
    ----------
    rows : list of dict
        Keys :data:`COLUMNS` (plain floats); meanings in :meth:`to_markdown`.
    alignment : Tensor, shape [n]
        Exact per-point ``A(x_i)``.
    ratio_per_point : Tensor, shape [n, S]
        ``R̂_N/R̂_T`` per point and σ.
    n_samples : int
    antithetic : bool
    """

    rows: list
    alignment: torch.Tensor
    ratio_per_point: torch.Tensor
    n_samples: int
    antithetic: bool
    column_docs: dict = field(default_factory=lambda: dict(_DOC_COLUMNS))

    def column(self, name: str) -> list[float]:
        """One column over σ."""
        if name not in COLUMNS:
            raise ValueError(f"column must be one of {COLUMNS}, got {name!r}")
        return [row[name] for row in self.rows]

    def loglog_slope(self, column: str = "taylor_rel_err", sigma_max: float | None = None) -> float:
        """Least-squares slope of ``log(column)`` against ``log σ`` (≈ 2 by Theorem 3.1).

        Rows with a non-positive or non-finite value, or ``σ > sigma_max``, are
        skipped; NaN if fewer than two rows remain.
        """
        pts = [
            (math.log(r["sigma"]), math.log(abs(r[column])))
            for r in self.rows
            if math.isfinite(r[column]) and r[column] != 0 and (sigma_max is None or r["sigma"] <= sigma_max)
        ]
        if len(pts) < 2:
            return float("nan")
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
        return sxy / sxx

    def to_markdown(self) -> str:
        """The table as GitHub markdown, followed by a legend of the columns."""
        head = "| " + " | ".join(COLUMNS) + " |"
        sep = "|" + "|".join("---:" for _ in COLUMNS) + "|"
        body = ["| " + " | ".join(f"{row[c]:.4g}" for c in COLUMNS) + " |" for row in self.rows]
        legend = [
            "",
            f"{self.alignment.shape[0]} point(s), {self.n_samples} draws each"
            + (" (antithetic ± pairs)" if self.antithetic else "") + ".",
        ] + [f"- `{c}`: {self.column_docs[c]}" for c in COLUMNS]
        return "\n".join([head, sep, *body, *legend])

    def as_dict(self) -> dict:
        """JSON-ready: rows, per-point alignment, settings."""
        return {
            "rows": [dict(r) for r in self.rows],
            "alignment": self.alignment.tolist(),
            "n_samples": self.n_samples,
            "antithetic": self.antithetic,
        }


def _pooled_ratio_var(units: torch.Tensor) -> torch.Tensor:
    """Delta-method variance of the pooled ratio ``R̄_N / R̄_T``, shape [S].

    ``units [2, n, m, S]`` (index 0 tangent ``b``, 1 normal ``a``) are
    independent Monte-Carlo units per point; with the points held fixed,
    ``Var R̄_N = Σ_i Var(a_i)/(m n²)`` (and likewise the covariance), and
    ``Var(R̄_N/R̄_T) ≈ Var R̄_N / R̄_T² − 2 R̄_N Cov / R̄_T³ + R̄_N² Var R̄_T / R̄_T⁴``.
    """
    b, a = units[0], units[1]
    n, m = a.shape[0], a.shape[1]
    if m < 2:
        return torch.full_like(a[0, 0], float("nan"))
    ma, mb = a.mean(1), b.mean(1)  # [n, S]
    va = a.var(1).sum(0) / (m * n * n)
    vb = b.var(1).sum(0) / (m * n * n)
    cov = ((a - ma.unsqueeze(1)) * (b - mb.unsqueeze(1))).sum(1).sum(0) / ((m - 1) * m * n * n)
    RN, RT = ma.mean(0), mb.mean(0)
    return va / RT**2 - 2 * RN * cov / RT**3 + RN**2 * vb / RT**4


def theorem_3_1_table(
    f: Callable,
    x: torch.Tensor,
    basis: torch.Tensor,
    sigmas: float | Sequence[float] | torch.Tensor,
    *,
    n_samples: int = 512,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    antithetic: bool = True,
) -> Theorem31Table:
    """Tabulate ``R_N(σ)/R_T(σ)`` against ``A(x)`` over σ (Theorem 3.1).

    Parameters
    ----------
    f : callable
        Differentiable per-example scalar ``f(x [m, ...]) -> [m]`` (``C²`` for
        the theorem), e.g. ``metrics.scalar_fn(model, y)``.
    x : Tensor, shape [n, d] or [n, c, h, w]
        Points; use float64 to see the ``σ²`` law over a wide σ range.
    basis : Tensor, shape [n, D, k] or [D, k]
        Orthonormal tangent bases.
    sigmas : sequence or Tensor [S]
        Noise levels, e.g. log-spaced.
    n_samples : int
        Draws per point (even when ``antithetic``).
    generator : torch.Generator, optional
    chunk_size : int, optional
        Rows per forward call.
    antithetic : bool
        ± pairs of draws (default): cancels the odd Taylor terms pair by pair
        (see the module docstring).

    Returns
    -------
    Theorem31Table
        ``.rows`` (columns :data:`COLUMNS`), ``.to_markdown()``, ``.loglog_slope()``.
        Raises ``ValueError`` at points where ``P_T ∇f = 0`` (outside the
        theorem's hypothesis: ``A`` is infinite).
    """
    g = scalar_gradient(f, x).reshape(x.shape[0], -1)
    sig, values, lin = robustness_values(
        f, x, basis, sigmas, n_samples=n_samples, generator=generator,
        chunk_size=chunk_size, antithetic=antithetic, probe=g,
    )
    tan_sq, nor_sq = split_tangent_normal(g, basis.to(g))
    if bool((tan_sq == 0).any()):
        bad = torch.nonzero(tan_sq == 0).flatten().tolist()
        raise ValueError(
            f"the tangent gradient P_T ∇f is zero at point(s) {bad[:10]}: Theorem 3.1 needs P_T ∇f ≠ 0"
        )
    A_point = nor_sq / tan_sq
    A = pooled_alignment(g, basis)
    units = draw_units(values, antithetic)  # [2, n, m, S]
    R_pt = units.mean(2)  # [2, n, S]
    R_T, R_N = R_pt[0].mean(0), R_pt[1].mean(0)  # [S]
    ratio = R_N / R_T
    rel_se = _pooled_ratio_var(units).sqrt() / A
    lin_sq = lin.square().sum((1, 2))  # [2]: pooled Σ (gᵀu_T)², Σ (gᵀu_N)²
    A_hat = lin_sq[1] / lin_sq[0]
    ratio_pt = R_pt[1] / R_pt[0]  # [n, S]
    point_err = (ratio_pt / A_point.unsqueeze(1) - 1).abs()
    rows = []
    for s in range(sig.shape[0]):
        rows.append({
            "sigma": float(sig[s]),
            "R_T": float(R_T[s]),
            "R_N": float(R_N[s]),
            "ratio": float(ratio[s]),
            "A": float(A),
            "rel_err": float(ratio[s] / A - 1),
            "rel_err_stderr": float(rel_se[s]),
            "taylor_rel_err": float((ratio[s] / A_hat - 1).abs()),
            "point_rel_err_median": float(point_err[:, s].median()),
        })
    return Theorem31Table(
        rows=rows, alignment=A_point, ratio_per_point=ratio_pt, n_samples=n_samples, antithetic=antithetic
    )
