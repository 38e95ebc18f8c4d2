r"""How far from tangent is the Bayes-optimal gradient on a curved manifold?

docs/theory.md ("Noisy manifolds"): for affine manifolds the normal component of
``g = grad_x log p(y | x)`` vanishes exactly; on a curved manifold it does not, and
the project measures it. For the vMF sphere mixture at on-manifold points
``x = c + r F u_0`` the only normal direction ``g`` can have is the radial one
(``g`` lies in ``span F``), and expanding the closed form of
``vmf_mixture`` in ``sigma`` gives (``t_c = mu_c^T u_0``, ``k`` the sphere dimension,
``pi_c = p(c | x)``):

    radial part of G_c  = sigma^2 / (2 r^3) kappa (k t_c - kappa (1 - t_c^2)) + (class-independent) + O(sigma^4)
    tangent part of G_c = kappa / r (mu_c - t_c u_0) + O(sigma^2)

so ``|P_N g| / |g| = sigma^2 / (2 r^2) |R_y - sum_c pi_c R_c| / |mu_y,T - sum_c pi_c mu_c,T| + O(sigma^4)``,
``R_c = k t_c - kappa (1 - t_c^2)``: the normal fraction falls like ``sigma^2``.
:func:`normal_component_table` measures it with the exact gradient and fits the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from manifold_lab.data.vmf_mixture import VonMisesFisherMixture
from manifold_lab.manifolds import Sphere

__all__ = ["normal_fraction", "predicted_normal_fraction", "NormalComponentTable", "normal_component_table"]


def normal_fraction(manifold, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``|P_N(x) g| / |g|`` per point: ``x, grad [n, d] -> [n]`` (x on ``manifold``)."""
    return manifold.project_normal(x, grad).norm(dim=-1) / grad.norm(dim=-1)


def predicted_normal_fraction(dist: VonMisesFisherMixture, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Leading-order (``O(sigma^2)``) normal fraction of ``grad log p(y|x)`` at sphere points.

    Parameters
    ----------
    dist : VonMisesFisherMixture
    x : Tensor, shape [n, d]
        Points on ``dist.sphere``.
    y : Tensor, shape [n]
        Labels.

    Returns
    -------
    Tensor, shape [n]: the formula in the module docstring (relative error ``O(sigma^2)``).
    """
    kw = dict(dtype=x.dtype, device=x.device)
    frame, center, mu = dist.frame.to(**kw), dist.center.to(**kw), dist.mean_directions.to(**kw)
    r, kappa, k = dist.radius, dist.concentration, dist.intrinsic_dim
    u0 = (x - center) @ frame / r
    t = u0 @ mu.T  # [n, C]
    radial = k * t - kappa * (1.0 - t.square())
    pi = dist.log_posterior(x).exp()
    own = radial.gather(-1, y[:, None]).squeeze(-1)
    num = (own - (pi * radial).sum(-1)).abs() * dist.noise_std**2 / (2.0 * r**2)
    mu_t = mu - t.unsqueeze(-1) * u0.unsqueeze(-2)  # tangent parts [n, C, p]
    own_t = mu_t[torch.arange(x.shape[0], device=x.device), y]
    den = (own_t - (pi.unsqueeze(-1) * mu_t).sum(-2)).norm(dim=-1)
    return num / den


@dataclass
class NormalComponentTable:
    """Normal fraction of the Bayes-optimal gradient against ``noise_std``.

    Attributes
    ----------
    noise_stds : list of float
    mean, median : list of float
        Of ``|P_N g| / |g|`` over the on-manifold test points.
    predicted_mean : list of float
        Mean of the leading-order prediction (:func:`predicted_normal_fraction`).
    orthogonal_max : list of float
        Largest ``|g - F F^T g| / |g|`` (the part outside the sphere's flat, exactly 0 in theory).
    slope, intercept : float
        Least-squares fit ``log(mean) = slope log(sigma) + intercept`` over the
        ``fit_last`` smallest noise levels.
    config : dict
    """

    noise_stds: list
    mean: list
    median: list
    predicted_mean: list
    orthogonal_max: list
    slope: float
    intercept: float
    config: dict = field(default_factory=dict)

    def format(self) -> str:
        lines = [f"{'noise_std':>10} {'mean |P_N g|/|g|':>18} {'median':>12} {'mean/sigma^2':>13} "
                 f"{'predicted mean':>15} {'max outside flat':>17}"]
        for s, m, med, p, o in zip(self.noise_stds, self.mean, self.median, self.predicted_mean,
                                   self.orthogonal_max):
            lines.append(f"{s:>10.4g} {m:>18.6e} {med:>12.4e} {m / s**2:>13.5f} {p:>15.6e} {o:>17.2e}")
        lines.append(f"fitted log-log rate over the {self.config.get('fit_last')} smallest noise levels: "
                     f"slope = {self.slope:.4f} (theory: 2), constant = {math.exp(self.intercept):.4f}")
        return "\n".join(lines)


def normal_component_table(
    noise_stds: Sequence[float] = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001),
    *,
    intrinsic_dim: int = 2,
    ambient_dim: int = 64,
    radius: float = 1.0,
    n_classes: int = 4,
    concentration: float = 4.0,
    n_points: int = 4000,
    fit_last: int = 4,
    seed: int = 0,
) -> NormalComponentTable:
    """Measure ``|P_N grad log p(y|x)| / |grad log p(y|x)|`` at on-manifold points.

    For each ``noise_std`` a ``VonMisesFisherMixture`` on the same ``Sphere`` is
    built; ``n_points`` noise-free samples (same generator seed for every level)
    and their labels are scored with the exact gradient in float64.
    """
    sphere = Sphere(intrinsic_dim, ambient_dim, radius=radius, seed=seed)
    rows = {"mean": [], "median": [], "predicted_mean": [], "orthogonal_max": []}
    for s in noise_stds:
        dist = VonMisesFisherMixture(sphere, n_classes, concentration, s, seed=seed)
        x, y = dist.sample(n_points, generator=torch.Generator().manual_seed(seed + 1),
                           dtype=torch.float64, on_manifold=True)
        g = dist.posterior_grad(x, y)
        frac = normal_fraction(sphere, x, g)
        outside = (g - (g @ dist.frame) @ dist.frame.T).norm(dim=-1) / g.norm(dim=-1)
        rows["mean"].append(float(frac.mean()))
        rows["median"].append(float(frac.median()))
        rows["predicted_mean"].append(float(predicted_normal_fraction(dist, x, y).mean()))
        rows["orthogonal_max"].append(float(outside.max()))
    fit_last = min(fit_last, len(noise_stds))
    smallest = np.argsort(noise_stds)[:fit_last]
    slope, intercept = np.polyfit(np.log(np.asarray(noise_stds, dtype=float)[smallest]),
                                  np.log(np.asarray(rows["mean"])[smallest]), 1)
    config = dict(intrinsic_dim=intrinsic_dim, ambient_dim=ambient_dim, radius=radius, n_classes=n_classes,
                  concentration=concentration, n_points=n_points, fit_last=fit_last, seed=seed)
    return NormalComponentTable(list(noise_stds), rows["mean"], rows["median"], rows["predicted_mean"],
                                rows["orthogonal_max"], float(slope), float(intercept), config)
