"""One score interface for exact smoothed scores, trained denoisers and pretrained diffusion models.

Anything that can denoise at a noise level ``sigma`` is a :class:`ScoreModel`; its
score of the noise-smoothed data follows from Tweedie's formula (docs/theory.md),

    s_sigma(x) = (D(x, sigma) - x) / sigma^2,

so consumers (metrics comparing input gradients with scores, the experiments)
see an exact distribution, :class:`~manifold_lab.learned.LearnedScore` and (in
later issues) a user's pretrained diffusion model the same way.
"""

from __future__ import annotations

import abc
import math
from typing import Sequence

import torch

from manifold_lab.data.gaussian_signal_distractor import LinearSignalDistractor
from manifold_lab.data.smoothed import exact_denoiser, smoothed_score
from manifold_lab.learned._images import as_images

__all__ = ["ScoreModel", "ExactScore", "sigma_per_example"]


def sigma_per_example(sigma: torch.Tensor | float, n: int, like: torch.Tensor) -> torch.Tensor:
    """``sigma`` as a positive finite ``[n]`` tensor in ``like``'s dtype/device (a number broadcasts)."""
    sig = torch.as_tensor(sigma, dtype=like.dtype).to(like.device).flatten()
    if sig.numel() == 1:
        sig = sig.expand(n)
    if sig.shape != (n,):
        raise ValueError(f"sigma must be a number or have {n} entries (one per image), got {sig.numel()}")
    if not bool(torch.isfinite(sig).all()) or bool((sig <= 0).any()):
        raise ValueError("sigma must be finite and > 0")
    return sig


class ScoreModel(abc.ABC):
    """A denoiser ``D(x, sigma) ~ E[x_0 | x_0 + sigma eps = x]`` and the score it implies.

    Subclasses set ``image_shape`` ``(c, h, w)`` and implement :meth:`_denoise` on
    ``[n, c, h, w]`` images with per-image ``sigma [n]``.
    """

    image_shape: tuple[int, int, int]

    @abc.abstractmethod
    def _denoise(self, images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``[n, c, h, w] x [n] -> [n, c, h, w]``; inputs validated."""

    @property
    def ambient_dim(self) -> int:
        """``D = c h w``."""
        return math.prod(self.image_shape)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``D(x, sigma)``, in the shape of ``x`` (``[n, c, h, w]`` or ``[n, D]``).

        Parameters
        ----------
        x : Tensor
        sigma : float or Tensor, shape [n]
            Noise standard deviation per pixel (> 0).
        """
        images = as_images(x, self.image_shape)
        return self._denoise(images, sigma_per_example(sigma, images.shape[0], images)).reshape(x.shape)

    def score(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Tweedie's ``s_sigma(x) = (D(x, sigma) - x) / sigma^2``: ``[n, D]``."""
        images = as_images(x, self.image_shape)
        sig = sigma_per_example(sigma, images.shape[0], images)
        flat = images.reshape(images.shape[0], -1)
        return (self._denoise(images, sig).reshape(flat.shape).to(flat) - flat) / sig[:, None].square()


class ExactScore(ScoreModel):
    """The exact smoothed score of a :class:`LinearSignalDistractor` (e.g. ``MaskedImageSignalDistractor``).

    ``score`` is the closed form ``smoothed_score`` (not Tweedie's difference, which
    would lose digits at small sigma); ``denoise`` is the exact posterior mean.

    Parameters
    ----------
    dist : LinearSignalDistractor
    image_shape : (c, h, w), optional
        Default: ``dist.image_shape`` (masked images) or ``(d, 1, 1)``.
    """

    def __init__(self, dist: LinearSignalDistractor, image_shape: Sequence[int] | None = None) -> None:
        if not isinstance(dist, LinearSignalDistractor):
            raise ValueError(f"ExactScore needs a LinearSignalDistractor, got {type(dist).__name__}")
        self.dist = dist
        shape = image_shape or getattr(dist, "image_shape", (dist.ambient_dim, 1, 1))
        self.image_shape = tuple(int(s) for s in shape)
        if math.prod(self.image_shape) != dist.ambient_dim:
            raise ValueError(f"image_shape {list(self.image_shape)} does not hold d={dist.ambient_dim} values")

    def _denoise(self, images, sigma):
        flat = images.reshape(images.shape[0], -1)
        return exact_denoiser(self.dist, flat, sigma.cpu()).reshape(images.shape)

    def score(self, x, sigma):
        images = as_images(x, self.image_shape)
        sig = sigma_per_example(sigma, images.shape[0], images)
        return smoothed_score(self.dist, images.reshape(images.shape[0], -1), sig.cpu())

    def __repr__(self) -> str:
        return f"ExactScore({self.dist!r})"
