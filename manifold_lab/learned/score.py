"""One score interface for exact smoothed scores, trained denoisers and pretrained diffusion models.

Anything that can denoise at a noise level ``sigma`` is a :class:`ScoreModel`; its
score of the noise-smoothed data follows from Tweedie's formula (docs/theory.md),

    s_sigma(x) = (D(x, sigma) - x) / sigma^2,

so consumers (metrics comparing input gradients with scores, the experiments)
see an exact distribution, :class:`~manifold_lab.learned.LearnedScore` and a
user's pretrained diffusion model the same way.

A **class-conditional** score model (``conditional``) also denoises given a class,
``D(x, sigma, y) ~ E[x_0 | x, y]``, and so gives ``s_sigma(x | y)`` and the Bayes gradient
of the noise-smoothed data (Bayes' rule at every sigma, the class prior cancels):

    grad_x log p_sigma(y | x) = s_sigma(x | y) - s_sigma(x) = (D(x, sigma, y) - D(x, sigma)) / sigma^2.
"""

from __future__ import annotations

import abc
import math
from typing import Sequence

import torch

from manifold_lab.data.base import Distribution
from manifold_lab.data.smoothed import (
    SMOOTHABLE,
    exact_denoiser,
    smoothed_class_score,
    smoothed_posterior_grad,
    smoothed_score,
)
from manifold_lab._validation import check_class_labels
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
    ``[n, c, h, w]`` images with per-image ``sigma [n]``; class-conditional ones set
    ``n_classes`` and implement :meth:`_denoise_class`.
    """

    image_shape: tuple[int, int, int]
    #: Number of classes of a class-conditional model; ``None``: unconditional only.
    n_classes: int | None = None

    @abc.abstractmethod
    def _denoise(self, images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``[n, c, h, w] x [n] -> [n, c, h, w]``; inputs validated."""

    def _denoise_class(self, images: torch.Tensor, sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``D(x, sigma, y)``: ``[n, c, h, w] x [n] x [n] (int64) -> [n, c, h, w]``; inputs validated."""
        raise NotImplementedError(f"{type(self).__name__} sets n_classes but has no class-conditional denoiser")

    @property
    def ambient_dim(self) -> int:
        """``D = c h w``."""
        return math.prod(self.image_shape)

    @property
    def conditional(self) -> bool:
        """Whether ``score(x, sigma, y)`` and :meth:`bayes_gradient` are available."""
        return self.n_classes is not None

    def _labels(self, y: torch.Tensor | int, n: int, what: str) -> torch.Tensor:
        """``y`` as int64 ``[n]`` in ``[0, n_classes)``, or a one-line error (also for an unconditional model)."""
        if not self.conditional:
            raise ValueError(f"{what} needs a class-conditional score model, but {self!r} was made without "
                             "labels; fit one with fit_denoiser(x, labels=y, n_classes=C, ...)")
        return check_class_labels(torch.as_tensor(y).cpu(), n, self.n_classes)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | int | None = None
                ) -> torch.Tensor:
        """``D(x, sigma)``, or ``D(x, sigma, y)`` when ``y`` is given, in the shape of ``x``.

        Parameters
        ----------
        x : Tensor, shape [n, c, h, w] or [n, D]
        sigma : float or Tensor, shape [n]
            Noise standard deviation per pixel (> 0).
        y : int or Tensor, shape [n], optional
            Classes (a class-conditional model only).
        """
        images = as_images(x, self.image_shape)
        sig = sigma_per_example(sigma, images.shape[0], images)
        if y is None:
            return self._denoise(images, sig).reshape(x.shape)
        labels = self._labels(y, images.shape[0], "denoise(x, sigma, y)")
        return self._denoise_class(images, sig, labels).reshape(x.shape)

    def score(self, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | int | None = None
              ) -> torch.Tensor:
        """Tweedie's ``s_sigma(x) = (D(x, sigma) - x) / sigma^2``, or ``s_sigma(x | y)`` when ``y`` is given.

        Parameters
        ----------
        x : Tensor, shape [n, c, h, w] or [n, D]
        sigma : float or Tensor, shape [n]
        y : int or Tensor, shape [n], optional
            Classes: the class-conditional score (a class-conditional model only).

        Returns
        -------
        Tensor, shape [n, D]
        """
        images = as_images(x, self.image_shape)
        sig = sigma_per_example(sigma, images.shape[0], images)
        flat = images.reshape(images.shape[0], -1)
        if y is None:
            den = self._denoise(images, sig)
        else:
            den = self._denoise_class(images, sig, self._labels(y, images.shape[0], "score(x, sigma, y)"))
        return (den.reshape(flat.shape).to(flat) - flat) / sig[:, None].square()

    def bayes_gradient(self, x: torch.Tensor, y: torch.Tensor | int, sigma: torch.Tensor | float) -> torch.Tensor:
        """``grad_x log p_sigma(y | x) = s_sigma(x | y) - s_sigma(x) = (D(x, sigma, y) - D(x, sigma)) / sigma^2``.

        The Bayes-optimal classifier's input gradient for the data smoothed by
        ``N(0, sigma^2 I)`` (module docstring), from the two denoiser outputs (``x``
        cancels before the division).

        Parameters
        ----------
        x : Tensor, shape [n, c, h, w] or [n, D]
        y : int or Tensor, shape [n]
        sigma : float or Tensor, shape [n]

        Returns
        -------
        Tensor, shape [n, D]
        """
        images = as_images(x, self.image_shape)
        labels = self._labels(y, images.shape[0], "bayes_gradient")
        sig = sigma_per_example(sigma, images.shape[0], images)
        n = images.shape[0]
        diff = self._denoise_class(images, sig, labels).reshape(n, -1) - self._denoise(images, sig).reshape(n, -1)
        return diff.to(images) / sig[:, None].square()


class ExactScore(ScoreModel):
    """The exact smoothed scores of a distribution that smoothing keeps in closed form.

    ``LinearSignalDistractor`` (e.g. ``MaskedImageSignalDistractor``) or
    ``GaussianClassImages`` (``data.smoothed.SMOOTHABLE``). Always class-conditional:
    ``score(x, sigma[, y])`` and ``bayes_gradient`` are the closed forms
    ``smoothed_score``, ``smoothed_class_score`` and ``smoothed_posterior_grad`` (not
    Tweedie's differences, which would lose digits at small sigma); ``denoise`` is the
    exact posterior mean.

    Parameters
    ----------
    dist : LinearSignalDistractor or GaussianClassImages
    image_shape : (c, h, w), optional
        Default: ``dist.image_shape`` (image distributions) or ``(d, 1, 1)``.
    """

    def __init__(self, dist: Distribution, image_shape: Sequence[int] | None = None) -> None:
        if not isinstance(dist, SMOOTHABLE):
            raise ValueError(f"ExactScore needs a LinearSignalDistractor or GaussianClassImages, got "
                             f"{type(dist).__name__}")
        self.dist = dist
        self.n_classes = dist.n_classes
        shape = image_shape or getattr(dist, "image_shape", (dist.ambient_dim, 1, 1))
        self.image_shape = tuple(int(s) for s in shape)
        if math.prod(self.image_shape) != dist.ambient_dim:
            raise ValueError(f"image_shape {list(self.image_shape)} does not hold d={dist.ambient_dim} values")

    def _denoise(self, images, sigma):
        flat = images.reshape(images.shape[0], -1)
        return exact_denoiser(self.dist, flat, sigma.cpu()).reshape(images.shape)

    def _denoise_class(self, images, sigma, y):
        flat = images.reshape(images.shape[0], -1)
        sig = sigma.cpu()
        return (flat + sig.to(flat)[:, None].square() * smoothed_class_score(self.dist, flat, sig, y)
                ).reshape(images.shape)

    def score(self, x, sigma, y=None):
        images = as_images(x, self.image_shape)
        sig = sigma_per_example(sigma, images.shape[0], images)
        flat = images.reshape(images.shape[0], -1)
        if y is None:
            return smoothed_score(self.dist, flat, sig.cpu())
        return smoothed_class_score(self.dist, flat, sig.cpu(), self._labels(y, flat.shape[0], "score"))

    def bayes_gradient(self, x, y, sigma):
        images = as_images(x, self.image_shape)
        sig = sigma_per_example(sigma, images.shape[0], images)
        flat = images.reshape(images.shape[0], -1)
        return smoothed_posterior_grad(self.dist, flat, sig.cpu(), self._labels(y, flat.shape[0], "bayes_gradient"))

    def __repr__(self) -> str:
        return f"ExactScore({self.dist!r})"
