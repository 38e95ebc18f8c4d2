"""Sampling the von Mises–Fisher distribution on the unit sphere S^(p-1) ⊂ R^p.

Wood (1994), "Simulation of the von Mises Fisher distribution": the component
``W = mu^T u`` has density proportional to ``exp(kappa t) (1 - t^2)^((p-3)/2)`` on
``[-1, 1]`` and is drawn by rejection from a Beta proposal; the rest of ``u`` is a
uniform direction orthogonal to ``mu``. Everything is batched; the rejection loop
only redraws the rejected entries, and all randomness comes from ``generator``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["sample_vmf"]


def _beta_symmetric(n: int, half_dof: int, generator, device) -> torch.Tensor:
    """``Beta(half_dof/2, half_dof/2)`` as ``chi2 / (chi2 + chi2')`` (generator-friendly)."""
    g = torch.randn(2, n, half_dof, generator=generator, dtype=torch.float64, device=device).square().sum(-1)
    return g[0] / (g[0] + g[1])


def sample_vmf(
    mu: torch.Tensor, kappa: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw ``u ~ vMF(mu_i, kappa)`` for each row of ``mu``.

    Parameters
    ----------
    mu : Tensor, shape [n, p]
        Unit mean directions, ``p >= 2`` (float64 recommended).
    kappa : float
        Concentration > 0.
    generator : torch.Generator or None
        On ``mu.device``.

    Returns
    -------
    Tensor, shape [n, p], float64, unit rows.
    """
    n, p = mu.shape
    device = mu.device
    mu = mu.to(torch.float64)
    k1 = p - 1
    # Wood's constants, b written without the cancellation of (-2k + sqrt(4k^2 + k1^2)) / k1.
    b = k1 / (2.0 * kappa + math.sqrt(4.0 * kappa**2 + k1**2))
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + k1 * math.log(1.0 - x0 * x0)
    w = torch.empty(n, dtype=torch.float64, device=device)
    one_minus_w = torch.empty(n, dtype=torch.float64, device=device)
    pending = torch.arange(n, device=device)
    while pending.numel() > 0:
        m = pending.numel()
        z = _beta_symmetric(m, k1, generator, device)
        u = torch.rand(m, generator=generator, dtype=torch.float64, device=device)
        denom = 1.0 - (1.0 - b) * z
        cand = (1.0 - (1.0 + b) * z) / denom
        cand_1m = 2.0 * b * z / denom  # 1 - cand, exact form (cand is near 1 for large kappa)
        accept = kappa * cand + k1 * torch.log1p(-x0 * cand) - c >= torch.log(u)
        w[pending[accept]] = cand[accept]
        one_minus_w[pending[accept]] = cand_1m[accept]
        pending = pending[~accept]
    g = torch.randn(n, p, generator=generator, dtype=torch.float64, device=device)
    v = g - (g * mu).sum(-1, keepdim=True) * mu
    v = v / v.norm(dim=-1, keepdim=True)
    radial = torch.sqrt(one_minus_w * (2.0 - one_minus_w))  # sqrt(1 - w^2)
    return w[:, None] * mu + radial[:, None] * v
