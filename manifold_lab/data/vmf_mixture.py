r"""A mixture of von Mises–Fisher classes on a k-sphere, with Gaussian noise in R^d.

Model. The sphere is ``M = {c + r F u : u in S^k}``, ``F [d, p]`` orthonormal,
``p = k + 1``, radius ``r`` (a ``manifold_lab.manifolds.Sphere``). For class ``j``

    u | y=j ~ vMF(mu_j, kappa) on the unit sphere S^k ⊂ R^p,
              density  exp(kappa mu_j^T u) / C_p(kappa)  w.r.t. surface measure du,
    x = c + r F u + sigma eps,   eps ~ N(0, I_d).

Closed form. Write ``w = x - c``, ``y = F^T w`` (in-subspace coordinates),
``w_perp = w - F y``. Because ``|u| = 1``,
``|w - r F u|^2 = |w|^2 + r^2 - 2 r y^T u``, hence

    p(x | j) = (2 pi sigma^2)^(-d/2) exp(-(|w|^2 + r^2) / (2 sigma^2))
               * C_p(kappa)^(-1) * int_{S^k} exp((kappa mu_j + r y / sigma^2)^T u) du
             = (2 pi sigma^2)^(-d/2) exp(-(|w|^2 + r^2) / (2 sigma^2)) C_p(|a_j|) / C_p(kappa),

with ``a_j = kappa mu_j + r y / sigma^2`` and the vMF normaliser
``C_p(z) = int_{S^(p-1)} exp(z e^T u) du = (2 pi)^(p/2) z^(-nu) I_nu(z)``, ``nu = p/2 - 1``.

Stable evaluation. With ``b_j = sigma^2 a_j = r y + sigma^2 kappa mu_j``,
``z_j = |b_j| / sigma^2`` and ``h(z) = log(e^-z z^-nu I_nu(z))`` (``_bessel``):

    log p(x | j) = [ -d/2 log(2 pi sigma^2) - |w_perp|^2 / (2 sigma^2)
                     - (|y| - r)^2 / (2 sigma^2) - log(kappa^-nu I_nu(kappa)) ]      (shared)
                   + [ (2 r kappa mu_j^T y + sigma^2 kappa^2) / (r |y| + |b_j|) + h(z_j) ]  (class j)

(the bracket ``N_j / D_j`` equals ``z_j - r |y| / sigma^2`` without cancelling two
numbers of size ``r^2 / sigma^2``). Gradients, with ``A = I_{nu+1} / I_nu`` and hats for
unit vectors:

    shared:   -w_perp / sigma^2 - (|y| - r) / sigma^2 F y_hat
    class j:  F [ r (kappa |y| mu_j - (N_j / D_j) y) / (|b_j| |y|) - (1 - A(z_j)) r / sigma^2 b_hat_j ]

Both pieces are O(1) near the sphere for any sigma, so ``grad log p(y | x)``, which
only involves the class pieces, keeps full precision as sigma -> 0. (The first
class term equals ``r/sigma^2 (b_hat_j - y_hat)``; it is evaluated in that direct
form where ``|y| < r / 2`` to stay finite at the centre.)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from manifold_lab._validation import check_positive, check_positive_int
from manifold_lab.data._bessel import BesselI
from manifold_lab.data._directions import spread_unit_vectors
from manifold_lab.data._vmf import sample_vmf
from manifold_lab.data.base import ClassTerms, Distribution

__all__ = ["VonMisesFisherMixture"]

#: Below this fraction of the radius, |y| is too small to divide by: the class
#: gradient term uses the direct difference of unit vectors instead.
CENTRE_FRACTION = 0.5


class VonMisesFisherMixture(Distribution):
    """Classes are von Mises–Fisher laws on a sphere; data get isotropic noise in R^d.

    Parameters
    ----------
    sphere : manifold_lab.manifolds.Sphere
        The k-sphere (any ``k >= 1``) with float64 ``center [d]``, ``frame [d, k+1]``
        and ``radius``.
    n_classes : int
        ``C >= 2``.
    concentration : float
        ``kappa`` > 0 (shared by all classes).
    noise_std : float
        ``sigma`` > 0.
    seed : int
        Fixes the class mean directions ``mu_j`` (unit vectors of ``R^(k+1)``, sphere
        coordinates): a regular simplex in a random orientation when
        ``C <= k + 2`` (all pairs equally far apart, the best separation possible),
        equally spaced angles with a random phase on a circle (``k = 1``),
        otherwise a seeded start spread out by Riesz-energy repulsion.
    class_probs : sequence of float, optional
        Prior (uniform by default).

    Notes
    -----
    The density, its stable evaluation and its gradients are derived in the module
    docstring; they are exact (no quadrature, no Monte Carlo).
    """

    def __init__(
        self,
        sphere,
        n_classes: int,
        concentration: float,
        noise_std: float,
        *,
        seed: int = 0,
        class_probs: Sequence[float] | None = None,
    ) -> None:
        for attr in ("center", "frame", "radius"):
            if not hasattr(sphere, attr):
                raise ValueError(f"sphere must be a manifold_lab.manifolds.Sphere (missing .{attr}), "
                                 f"got {type(sphere).__name__}")
        check_positive("concentration", concentration)
        check_positive("noise_std", noise_std)
        frame = torch.as_tensor(sphere.frame).detach().to("cpu", torch.float64)
        center = torch.as_tensor(sphere.center).detach().to("cpu", torch.float64)
        if frame.ndim != 2 or frame.shape[1] < 2 or frame.shape[1] >= frame.shape[0] + 1:
            raise ValueError(f"sphere.frame must have shape [d, k+1] with 2 <= k+1 <= d, got {list(frame.shape)}")
        super().__init__(frame.shape[0], check_positive_int("n_classes", n_classes, minimum=2), class_probs)
        self.sphere = sphere
        self.frame = frame
        self.center = center
        self.radius = float(sphere.radius)
        check_positive("sphere.radius", self.radius)
        self.concentration = float(concentration)
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        p = frame.shape[1]
        self._bessel = BesselI(p / 2.0 - 1.0)
        kappa = torch.tensor([self.concentration], dtype=torch.float64)
        # log(kappa^-nu I_nu(kappa)) = kappa + h(kappa): the class-independent vMF normaliser.
        self._log_norm_kappa = float(kappa + self._bessel.log_scaled(kappa))
        self.mean_directions = spread_unit_vectors(self.n_classes, p, torch.Generator().manual_seed(self.seed))

    @property
    def intrinsic_dim(self) -> int:
        return self.frame.shape[1] - 1

    @property
    def manifold(self):
        """The sphere the classes live on."""
        return self.sphere

    @property
    def class_mean_points(self) -> torch.Tensor:
        """``c + r F mu_j``, Tensor, shape [C, d]: the modes of the classes on the sphere."""
        return self.center + self.radius * self.mean_directions @ self.frame.T

    def _terms(self, x: torch.Tensor, *, with_score: bool) -> ClassTerms:
        kw = dict(dtype=x.dtype, device=x.device)
        frame, center, mu = self.frame.to(**kw), self.center.to(**kw), self.mean_directions.to(**kw)
        r, kappa, var = self.radius, self.concentration, self.noise_std**2
        tiny = torch.finfo(x.dtype).tiny
        w = x - center
        y = w @ frame  # [..., p]
        w_perp = w - y @ frame.T
        ny = y.norm(dim=-1)  # [...]
        b = r * y.unsqueeze(-2) + (var * kappa) * mu  # [..., C, p]
        nb = b.norm(dim=-1)  # [..., C]
        z = nb / var
        num = 2.0 * r * kappa * (y @ mu.T) + var * kappa**2  # N_j
        den = r * ny.unsqueeze(-1) + nb  # D_j > 0: zero only if y = 0 and b_j = sigma^2 kappa mu_j = 0
        ratio_nd = num / den.clamp_min(tiny)
        class_log = ratio_nd + self._bessel.log_scaled(z)
        shared_log = (-0.5 * self.ambient_dim * math.log(2 * math.pi * var)
                      - 0.5 * w_perp.square().sum(-1) / var
                      - 0.5 * (ny - r).square() / var - self._log_norm_kappa)
        if not with_score:
            return ClassTerms(shared_log, class_log)
        ny_safe = ny.clamp_min(tiny).unsqueeze(-1)  # [..., 1]
        y_hat = y / ny_safe
        b_hat = b / nb.clamp_min(tiny).unsqueeze(-1)
        # r/sigma^2 (b_hat - y_hat): stable form away from the centre, direct near it.
        stable = r * (kappa * ny_safe.unsqueeze(-1) * mu - ratio_nd.unsqueeze(-1) * y.unsqueeze(-2)) / (
            nb.clamp_min(tiny) * ny_safe
        ).unsqueeze(-1)
        direct = (r / var) * (b_hat - y_hat.unsqueeze(-2))
        far = (ny >= CENTRE_FRACTION * r)[..., None, None]
        grad_t = torch.where(far, stable, direct)
        grad_h = -(self._bessel.ratio_complement(z) * (r / var)).unsqueeze(-1) * b_hat
        shared_score = -w_perp / var - ((ny - r) / var).unsqueeze(-1) * (y_hat @ frame.T)
        return ClassTerms(shared_log, class_log, shared_score, grad_t + grad_h, frame)

    def _sample(self, n, generator, dtype, device, on_manifold):
        y = self._sample_labels(n, generator, device)
        mu = self.mean_directions.to(device)[y]
        u = sample_vmf(mu, self.concentration, generator)  # [n, p] float64
        eps = torch.randn(n, self.ambient_dim, generator=generator, dtype=torch.float64, device=device)
        m = self.center.to(device) + self.radius * u @ self.frame.to(device).T
        x = m if on_manifold else m + self.noise_std * eps
        return x.to(dtype), y

    def __repr__(self) -> str:
        return (f"VonMisesFisherMixture(intrinsic_dim={self.intrinsic_dim}, ambient_dim={self.ambient_dim}, "
                f"n_classes={self.n_classes}, concentration={self.concentration}, noise_std={self.noise_std})")
