"""Exact noise-smoothed scores of the linear-Gaussian signal–distractor distributions.

For ``x = b + S s + D t + sigma_n eps`` (:class:`LinearSignalDistractor`, and so
:class:`MaskedImageSignalDistractor`) the smoothed density ``p_sigma = p * N(0, sigma^2 I)``
is the law of ``x + sigma eps'``: the same model with noise level
``sqrt(sigma_n^2 + sigma^2)``, since the two independent isotropic Gaussians add.
Hence the smoothed score ``s_sigma(x) = grad log p_sigma(x)`` (docs/theory.md, "Noisy
manifolds") is the closed-form score of that model, and the exact denoiser is
Tweedie's ``E[x_0 | x] = x + sigma^2 s_sigma(x)``.
"""

from __future__ import annotations

import math

import torch

from manifold_lab._validation import check_finite
from manifold_lab.data.gaussian_signal_distractor import LinearSignalDistractor

__all__ = ["smoothed", "smoothed_score", "exact_denoiser"]


def smoothed(dist: LinearSignalDistractor, sigma: float) -> LinearSignalDistractor:
    """The law of ``x + sigma eps`` for ``x ~ dist``: ``dist`` with noise ``sqrt(sigma_n^2 + sigma^2)``."""
    if not isinstance(dist, LinearSignalDistractor):
        raise ValueError(f"dist must be a LinearSignalDistractor (or MaskedImageSignalDistractor), "
                         f"got {type(dist).__name__}")
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    return LinearSignalDistractor(dist.signal_basis, dist.distractor_basis, dist.class_means,
                                  offset=dist.offset, signal_std=dist.signal_std,
                                  distractor_std=dist.distractor_std,
                                  noise_std=math.hypot(dist.noise_std, sigma),
                                  class_probs=dist.log_prior.exp().tolist())


def _per_example(sigma: torch.Tensor | float, n: int) -> torch.Tensor:
    sig = torch.as_tensor(sigma, dtype=torch.float64).flatten().cpu()
    if sig.numel() not in (1, n):
        raise ValueError(f"sigma must be a number or have {n} entries (one per point), got {sig.numel()}")
    check_finite("sigma", sig)
    if bool((sig < 0).any()):
        raise ValueError("sigma must be >= 0")
    return sig.expand(n)


def smoothed_score(dist: LinearSignalDistractor, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``s_sigma(x) = grad_x log (p * N(0, sigma^2 I))(x)``, exact.

    Parameters
    ----------
    x : Tensor, shape [n, d]
    sigma : float or Tensor, shape [n]
        One level for all points or one per point (``>= 0``; 0 gives ``dist.score``).

    Returns
    -------
    Tensor, shape [n, d], in ``x``'s dtype and device
    """
    if x.ndim != 2:
        raise ValueError(f"x must have shape [n, d], got {list(x.shape)}")
    sig = _per_example(sigma, x.shape[0])
    out = torch.empty_like(x)
    for level in torch.unique(sig):
        rows = (sig == level).nonzero().flatten().to(x.device)
        out[rows] = smoothed(dist, float(level)).score(x[rows])
    return out


def exact_denoiser(dist: LinearSignalDistractor, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``E[x_0 | x_0 + sigma eps = x] = x + sigma^2 s_sigma(x)`` (Tweedie), ``[n, d] -> [n, d]``."""
    sig = _per_example(sigma, x.shape[0]).to(x)
    return x + sig[:, None].square() * smoothed_score(dist, x, sigma)
