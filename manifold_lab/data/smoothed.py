"""Exact noise-smoothed scores of the distributions that stay Gaussian-class under smoothing.

For ``x = b + S s + D t + sigma_n eps`` (:class:`LinearSignalDistractor`, and so
:class:`MaskedImageSignalDistractor`) and for Gaussian classes ``N(mu_y, Sigma_y + sigma_n^2 I)``
(:class:`GaussianClassImages`) the smoothed density ``p_sigma = p * N(0, sigma^2 I)``
is the law of ``x + sigma eps'``: the same model with noise level
``sqrt(sigma_n^2 + sigma^2)``, since the two independent isotropic Gaussians add (per
class, so the labels are untouched). Hence the smoothed score ``s_sigma(x) = grad log p_sigma(x)``
(docs/theory.md, "Noisy manifolds"), the smoothed class scores ``s_sigma(x | y)`` and the
smoothed Bayes gradient ``grad log p_sigma(y | x) = s_sigma(x | y) - s_sigma(x)`` are the
closed forms of that model, and the exact denoiser is Tweedie's
``E[x_0 | x] = x + sigma^2 s_sigma(x)``.
"""

from __future__ import annotations

import math

import torch

from manifold_lab._validation import check_finite
from manifold_lab.data.base import Distribution
from manifold_lab.data.gaussian_class_images import GaussianClassImages
from manifold_lab.data.gaussian_signal_distractor import LinearSignalDistractor

__all__ = ["SMOOTHABLE", "smoothed", "smoothed_score", "smoothed_class_score", "smoothed_posterior_grad",
           "exact_denoiser"]

#: The distributions whose smoothed law is the same kind of distribution (closed forms);
#: each but LinearSignalDistractor (handled below) has a ``smoothed(sigma)`` method.
SMOOTHABLE = (LinearSignalDistractor, GaussianClassImages)


def smoothed(dist: Distribution, sigma: float) -> Distribution:
    """The law of ``x + sigma eps`` for ``x ~ dist``: ``dist`` with noise ``sqrt(sigma_n^2 + sigma^2)``."""
    if not isinstance(dist, SMOOTHABLE):
        raise ValueError(f"dist must be a LinearSignalDistractor (or MaskedImageSignalDistractor) or "
                         f"GaussianClassImages, got {type(dist).__name__}")
    if not isinstance(dist, LinearSignalDistractor):
        return dist.smoothed(sigma)   # the class's own closed form (GaussianClassImages)
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


def _by_level(dist, x, sigma, fn, y=None) -> torch.Tensor:
    """``fn(smoothed(dist, sigma_i), x_i[, y_i])`` row by row, grouped by noise level: ``[n, d]``."""
    if x.ndim != 2:
        raise ValueError(f"x must have shape [n, d], got {list(x.shape)}")
    sig = _per_example(sigma, x.shape[0])
    if y is not None:
        y = torch.as_tensor(y, device=x.device)
        y = y.expand(x.shape[0]) if y.ndim == 0 else y
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must be a label or have {x.shape[0]} entries (one per point), got "
                             f"shape {list(y.shape)}")
    out = torch.empty_like(x)
    for level in torch.unique(sig):
        rows = (sig == level).nonzero().flatten().to(x.device)
        law = smoothed(dist, float(level))
        out[rows] = fn(law, x[rows]) if y is None else fn(law, x[rows], y[rows])
    return out


def smoothed_score(dist: Distribution, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
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
    return _by_level(dist, x, sigma, lambda law, pts: law.score(pts))


def _class_score_of(law: Distribution, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``law.class_score(x)[i, y_i]``: ``[n, d]``."""
    idx = law._check_labels(y, x)[:, None, None].expand(-1, 1, x.shape[-1])
    return law.class_score(x).gather(-2, idx)[:, 0]


def smoothed_class_score(dist: Distribution, x: torch.Tensor, sigma: torch.Tensor | float,
                         y: torch.Tensor | int) -> torch.Tensor:
    """``s_sigma(x | y) = grad_x log (p(. | y) * N(0, sigma^2 I))(x)``, exact.

    Parameters
    ----------
    x : Tensor, shape [n, d]
    sigma : float or Tensor, shape [n]
    y : int or Tensor, shape [n] (int64)
        The class of each point.

    Returns
    -------
    Tensor, shape [n, d]
    """
    return _by_level(dist, x, sigma, _class_score_of, y)


def smoothed_posterior_grad(dist: Distribution, x: torch.Tensor, sigma: torch.Tensor | float,
                            y: torch.Tensor | int) -> torch.Tensor:
    """``grad_x log p_sigma(y | x) = s_sigma(x | y) - s_sigma(x)``, exact (the smoothed Bayes gradient).

    Computed as the smoothed law's ``posterior_grad`` (the classes combined in the
    class-specific coefficients), not as the difference of two large scores.

    Parameters
    ----------
    x : Tensor, shape [n, d]
    sigma : float or Tensor, shape [n]
    y : int or Tensor, shape [n] (int64)

    Returns
    -------
    Tensor, shape [n, d]
    """
    return _by_level(dist, x, sigma, lambda law, pts, lab: law.posterior_grad(pts, lab), y)


def exact_denoiser(dist: Distribution, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``E[x_0 | x_0 + sigma eps = x] = x + sigma^2 s_sigma(x)`` (Tweedie), ``[n, d] -> [n, d]``."""
    sig = _per_example(sigma, x.shape[0]).to(x)
    return x + sig[:, None].square() * smoothed_score(dist, x, sigma)
