"""Learned scores: a noise-conditional denoiser trained by denoising score matching.

Denoising score matching (Vincent 2011) in the EDM parametrisation (Karras et al.
2022; see :mod:`manifold_lab.models.denoiser`): for ``x_0`` from the data,
``sigma`` log-uniform in ``[sigma_min, sigma_max]`` and ``x = x_0 + sigma eps``,

    loss = E || F(c_in x, c_noise) - (x_0 - c_skip x) / c_out ||^2,

which equals ``E lambda(sigma) ||D(x, sigma) - x_0||^2`` with ``lambda = 1 / c_out^2``
and is minimised by ``D = E[x_0 | x]``; the score then follows by Tweedie
(:class:`~manifold_lab.learned.ScoreModel`). It is accurate where it was trained,
at noisy points ``x_0 + sigma eps``; at a clean image ``x_0`` (where the paper
evaluates it) a large ``sigma`` is off its training distribution.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch

from manifold_lab._modes import eval_mode
from manifold_lab._validation import check_positive
from manifold_lab.learned._fitting import fit_unsupervised
from manifold_lab.learned._images import as_images, infer_image_shape, placed
from manifold_lab.learned.score import ScoreModel
from manifold_lab.models import NoiseConditionalDenoiser
from manifold_lab.models.denoiser import edm_coefficients
from manifold_lab.training import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["LearnedScore", "fit_denoiser", "denoising_loss"]

KIND = "learned_score"


class LearnedScore(ScoreModel):
    """A trained :class:`~manifold_lab.models.NoiseConditionalDenoiser` seen as a :class:`ScoreModel`.

    Parameters
    ----------
    model : NoiseConditionalDenoiser
    sigma_min, sigma_max : float
        The training range of noise levels (kept for reference and by ``save``).
    history : list of dict, optional
    """

    def __init__(self, model: NoiseConditionalDenoiser, *, sigma_min: float, sigma_max: float,
                 history: list[dict] | None = None) -> None:
        if not isinstance(model, NoiseConditionalDenoiser):
            raise ValueError(f"model must be a NoiseConditionalDenoiser, got {type(model).__name__}")
        self.model = model
        self.image_shape = model.image_shape
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.history = list(history or [])

    def _denoise(self, images, sigma):
        with eval_mode(self.model):
            return self.model(placed(images, self.model), placed(sigma, self.model)).to(images)

    def save(self, path: str | os.PathLike) -> Path:
        """``state_dict`` + JSON side file (``training.save_checkpoint``), written atomically."""
        extra = {"kind": KIND, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "history": self.history}
        return save_checkpoint(path, self.model, epoch=len(self.history), extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> "LearnedScore":
        """Read a saved denoiser (``weights_only=True``; no code is unpickled)."""
        ck = load_checkpoint(path, map_location=map_location)
        extra = ck.extra if isinstance(ck.extra, dict) else {}
        if extra.get("kind") != KIND:
            raise CheckpointError(f"{path} is not a LearnedScore checkpoint (kind {extra.get('kind')!r})")
        return cls(ck.build_model(), sigma_min=extra["sigma_min"], sigma_max=extra["sigma_max"],
                   history=extra.get("history", []))

    def __repr__(self) -> str:
        return (f"LearnedScore(image_shape={self.image_shape}, sigma in [{self.sigma_min:g}, "
                f"{self.sigma_max:g}])")


def denoising_loss(sigma_min: float, sigma_max: float):
    """The EDM denoising-score-matching loss (module docstring) for ``sigma`` log-uniform in the range."""
    log_lo, log_hi = math.log(sigma_min), math.log(sigma_max)

    def loss(model: NoiseConditionalDenoiser, x0: torch.Tensor, generator=None) -> torch.Tensor:
        n = x0.shape[0]
        u = torch.rand(n, generator=generator, device=x0.device, dtype=x0.dtype)
        sigma = (log_lo + (log_hi - log_lo) * u).exp()
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, model.sigma_data)
        scale = (lambda t: t[:, None, None, None])
        x = x0 + scale(sigma) * noise
        target = (x0 - scale(c_skip) * x) / scale(c_out)
        return (model.network(scale(c_in) * x, c_noise) - target).square().mean()

    loss.__name__ = "denoising_score_matching"
    return loss


def fit_denoiser(x: torch.Tensor, *, sigma_min: float, sigma_max: float, epochs: int, batch_size: int = 128,
                 seed: int = 0, device: str | torch.device = "cpu", progress: bool = True, width: int = 32,
                 image_shape: Sequence[int] | None = None, checkpoint_path: str | os.PathLike | None = None,
                 resume: bool = False) -> LearnedScore:
    """Train a noise-conditional denoiser on ``x`` by denoising score matching.

    Parameters
    ----------
    x : Tensor, shape [n, c, h, w] or [n, D]
        Clean training images.
    sigma_min, sigma_max : float
        ``0 < sigma_min <= sigma_max``: noise levels drawn log-uniformly per example.
    epochs, batch_size, seed, device, progress
        As for :func:`manifold_lab.training.train`; each epoch draws fresh noise.
    width : int
        Channels of the network at full resolution.
    image_shape : (c, h, w), optional
        For flattened ``x`` of an unusual size.
    checkpoint_path, resume
        As for :func:`~manifold_lab.learned.fit_autoencoder`.

    Returns
    -------
    LearnedScore
        ``sigma_data`` of the preconditioning is the standard deviation of ``x``.
    """
    check_positive("sigma_min", sigma_min)
    check_positive("sigma_max", sigma_max)
    if sigma_min > sigma_max:
        raise ValueError(f"sigma_min must be <= sigma_max, got {sigma_min} > {sigma_max}")
    shape = infer_image_shape(x, image_shape)
    images = as_images(x, shape).to(torch.float32)
    sigma_data = float(images.std())
    if not sigma_data > 0:
        raise ValueError("x has zero variance: a denoiser needs varied training images")
    model = NoiseConditionalDenoiser(shape, sigma_data=sigma_data, width=width, seed=seed)
    history = fit_unsupervised(model, denoising_loss(sigma_min, sigma_max), images, epochs=epochs,
                               batch_size=batch_size, seed=seed, device=device, progress=progress,
                               checkpoint_path=checkpoint_path, resume=resume)
    return LearnedScore(model, sigma_min=sigma_min, sigma_max=sigma_max, history=history)
