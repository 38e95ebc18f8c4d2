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

**With labels** the network also holds a noise-conditional classifier
``p_theta(y | x, sigma)`` and ``D(x, sigma, y) = D(x, sigma) + sigma^2 grad_x log p_theta(y | x, sigma)``
(:mod:`manifold_lab.models.denoiser`). Its loss adds, for every example,

- the cross-entropy ``-log p_theta(y | x_0 + sigma eps, sigma)``, minimised by the posterior of
  the noise-smoothed data ``p_sigma(y | x)``;
- the class-conditional denoising loss ``|| F_y - (x_0 - c_skip x) / c_out ||^2`` with
  ``F_y = F.detach() + sigma^2 grad_x log p_theta(y | x) / c_out``, minimised when
  ``D(x, sigma, y) = E[x_0 | x, y]``: it trains the classifier's *gradient* to be the
  Bayes gradient (Tweedie), and leaves the unconditional ``F`` to its own term.

Both are minimised by the same classifier, so one network gives the unconditional
score ``s_sigma(x)`` (trained on every example, as without labels), the
class-conditional ``s_sigma(x | y)`` and their difference, the Bayes gradient
``grad log p_sigma(y | x)`` (docs/theory.md, "The Bayes-optimal gradient on real images").
Why not classifier-free guidance's "none" label: the Bayes gradient is only 1-2 %
of the class-conditional score, so a denoiser that must produce it as the
difference of two outputs learns it slowly (on ``GaussianClassImages`` a small fit
stayed at chance, README); the cross-entropy trains it directly.
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
from manifold_lab.learned.score import ScoreModel, sigma_per_example
from manifold_lab.models import NoiseConditionalDenoiser
from manifold_lab.models.denoiser import edm_coefficients
from manifold_lab.training import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["LearnedScore", "fit_denoiser", "denoising_loss", "CLASS_LOSS_WEIGHT"]

KIND = "learned_score"
#: Weight of the cross-entropy (per example, in nats) against the class-conditional
#: denoising term (per pixel, in units of the unit-variance EDM target); Adam makes
#: only this ratio matter for the classifier. Small, because the denoising term is what
#: trains the classifier's *gradient*: on GaussianClassImages a tiny fit's Bayes-gradient
#: cosine at sigma = 0.25 was 0.21 / 0.25 / 0.30 with weights 1 / 0.03 / 0.003, and a
#: 2,000-step classifier alone gained 0.01-0.05 from a 10x smaller weight (README).
CLASS_LOSS_WEIGHT = 0.003


class LearnedScore(ScoreModel):
    """A trained :class:`~manifold_lab.models.NoiseConditionalDenoiser` seen as a :class:`ScoreModel`.

    Class-conditional (``score(x, sigma, y)``, ``bayes_gradient``) when the network
    was built with ``n_classes``.

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
        self.n_classes = model.n_classes
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.history = list(history or [])

    def _denoise(self, images, sigma):
        with eval_mode(self.model):
            return self.model(placed(images, self.model), placed(sigma, self.model)).to(images)

    def _denoise_class(self, images, sigma, y):
        with eval_mode(self.model):
            device = placed(sigma, self.model).device
            return self.model(placed(images, self.model), placed(sigma, self.model), y.to(device)).to(images)

    def bayes_gradient(self, x, y, sigma):
        """The classifier's ``grad_x log p_theta(y | x, sigma)`` (= ``s(x|y) - s(x)`` by construction): ``[n, D]``."""
        images = as_images(x, self.image_shape)
        labels = self._labels(y, images.shape[0], "bayes_gradient")
        sig = sigma_per_example(sigma, images.shape[0], images)
        with eval_mode(self.model):
            device = placed(sig, self.model).device
            grad = self.model.posterior_grad(placed(images, self.model), placed(sig, self.model), labels.to(device))
        return grad.reshape(images.shape[0], -1).to(images)

    def save(self, path: str | os.PathLike) -> Path:
        """``state_dict`` + JSON side file (``training.save_checkpoint``), written atomically."""
        extra = {"kind": KIND, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "history": self.history}
        return save_checkpoint(path, self.model, epoch=len(self.history), extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> "LearnedScore":
        """Read a saved denoiser (``weights_only=True``; no code is unpickled).

        Unconditional and class-conditional checkpoints alike: the network's JSON
        configuration says which (``n_classes``).
        """
        ck = load_checkpoint(path, map_location=map_location)
        extra = ck.extra if isinstance(ck.extra, dict) else {}
        if extra.get("kind") != KIND:
            raise CheckpointError(f"{path} is not a LearnedScore checkpoint (kind {extra.get('kind')!r})")
        return cls(ck.build_model(), sigma_min=extra["sigma_min"], sigma_max=extra["sigma_max"],
                   history=extra.get("history", []))

    def __repr__(self) -> str:
        cond = f", n_classes={self.n_classes}" if self.conditional else ""
        return (f"LearnedScore(image_shape={self.image_shape}, sigma in [{self.sigma_min:g}, "
                f"{self.sigma_max:g}]{cond})")


def _log_uniform_noise(x0, sigma_min, sigma_max, generator):
    """``sigma [n]`` log-uniform in the range and ``eps`` like ``x0`` (drawn in this order)."""
    n = x0.shape[0]
    u = torch.rand(n, generator=generator, device=x0.device, dtype=x0.dtype)
    sigma = (math.log(sigma_min) + (math.log(sigma_max) - math.log(sigma_min)) * u).exp()
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return sigma, noise


def denoising_loss(sigma_min: float, sigma_max: float, conditional: bool = False,
                   class_weight: float = CLASS_LOSS_WEIGHT):
    """The EDM denoising-score-matching loss (module docstring) for ``sigma`` log-uniform in the range.

    ``conditional=False``: ``loss(model, x0, generator)``. ``True``:
    ``loss(model, x0, generator, labels)`` for a model built with ``n_classes``: the
    unconditional term on the centred data plus ``class_weight`` x cross-entropy
    plus the class-conditional term (module docstring).
    """
    def scale(t):
        return t[:, None, None, None]

    if not conditional:
        def loss(model: NoiseConditionalDenoiser, x0: torch.Tensor, generator=None) -> torch.Tensor:
            sigma, noise = _log_uniform_noise(x0, sigma_min, sigma_max, generator)
            c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, model.sigma_data)
            x = x0 + scale(sigma) * noise
            target = (x0 - scale(c_skip) * x) / scale(c_out)
            return (model.network(scale(c_in) * x, c_noise) - target).square().mean()

        loss.__name__ = "denoising_score_matching"
        return loss

    def cond_loss(model: NoiseConditionalDenoiser, x0: torch.Tensor, generator=None, labels=None) -> torch.Tensor:
        if labels is None or not model.conditional:
            raise ValueError("a class-conditional denoising loss needs labels and a model built with n_classes")
        sigma, noise = _log_uniform_noise(x0, sigma_min, sigma_max, generator)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, model.sigma_data)
        centred = x0 - model.data_mean
        x = centred + scale(sigma) * noise
        target = (centred - scale(c_skip) * x) / scale(c_out)
        out = model.network(scale(c_in) * x, c_noise)
        # The classifier sees the same noisy images; its gradient is taken in pixels.
        xg = x.detach().requires_grad_(True)
        log_post = torch.log_softmax(model.class_logits(scale(c_in) * xg, c_noise), dim=-1)
        chosen = log_post.gather(1, labels[:, None])[:, 0]
        grad = torch.autograd.grad(chosen.sum(), xg, create_graph=True)[0]
        cond_residual = scale(sigma.square() / c_out) * grad - (target - out.detach())
        return ((out - target).square().mean() + cond_residual.square().mean()
                - class_weight * chosen.mean())

    cond_loss.__name__ = f"class_conditional_denoising_score_matching(class_weight={class_weight:g})"
    return cond_loss


def _check_labels(labels, n: int, n_classes: int | None) -> tuple[torch.Tensor, int]:
    """``labels`` as int64 ``[n]`` and the number of classes (given, or ``max + 1``)."""
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor [n], got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape [{n}] (one per image), got {list(labels.shape)}")
    labels = labels.to(torch.int64).cpu()
    if int(labels.min()) < 0:
        raise ValueError(f"labels must be >= 0, got {int(labels.min())}")
    classes = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    if classes < 2:
        raise ValueError(f"a class-conditional denoiser needs n_classes >= 2, got {classes}")
    if int(labels.max()) >= classes:
        raise ValueError(f"labels must lie in [0, {classes - 1}] (n_classes={classes}), got {int(labels.max())}")
    return labels, classes


def fit_denoiser(x: torch.Tensor, *, sigma_min: float, sigma_max: float, epochs: int, batch_size: int = 128,
                 seed: int = 0, device: str | torch.device = "cpu", progress: bool = True, width: int = 32,
                 image_shape: Sequence[int] | None = None, checkpoint_path: str | os.PathLike | None = None,
                 resume: bool = False, labels: torch.Tensor | None = None, n_classes: int | None = None,
                 class_weight: float = CLASS_LOSS_WEIGHT) -> LearnedScore:
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
    labels : Tensor, shape [n], int, optional
        Class of each image: fit one class-conditional denoiser (module docstring)
        that also gives the unconditional score. ``None`` (default): the
        unconditional fit, weights identical to those before labels existed.
    n_classes : int, optional
        Number of classes (``labels`` in ``[0, n_classes)``); default ``max(labels) + 1``.
    class_weight : float
        Weight (> 0) of the cross-entropy in a conditional fit (``CLASS_LOSS_WEIGHT``).

    Returns
    -------
    LearnedScore
        ``sigma_data`` of the preconditioning is the standard deviation of ``x``
        (of ``x`` minus its mean image when conditional).
    """
    check_positive("sigma_min", sigma_min)
    check_positive("sigma_max", sigma_max)
    if sigma_min > sigma_max:
        raise ValueError(f"sigma_min must be <= sigma_max, got {sigma_min} > {sigma_max}")
    shape = infer_image_shape(x, image_shape)
    images = as_images(x, shape).to(torch.float32)
    if labels is None:
        if n_classes is not None:
            raise ValueError("n_classes needs labels: pass labels=y (one class per image) for a conditional fit")
        sigma_data = float(images.std())
        if not sigma_data > 0:
            raise ValueError("x has zero variance: a denoiser needs varied training images")
        model = NoiseConditionalDenoiser(shape, sigma_data=sigma_data, width=width, seed=seed)
        history = fit_unsupervised(model, denoising_loss(sigma_min, sigma_max), images, epochs=epochs,
                                   batch_size=batch_size, seed=seed, device=device, progress=progress,
                                   checkpoint_path=checkpoint_path, resume=resume)
        return LearnedScore(model, sigma_min=sigma_min, sigma_max=sigma_max, history=history)
    check_positive("class_weight", class_weight)
    labels, classes = _check_labels(labels, images.shape[0], n_classes)
    mean = images.mean(0)
    sigma_data = float((images - mean).std())
    if not sigma_data > 0:
        raise ValueError("x has zero variance: a denoiser needs varied training images")
    model = NoiseConditionalDenoiser(shape, sigma_data=sigma_data, width=width, seed=seed, n_classes=classes)
    with torch.no_grad():
        model.data_mean.copy_(mean)
    history = fit_unsupervised(model, denoising_loss(sigma_min, sigma_max, conditional=True, class_weight=float(class_weight)), images,
                               epochs=epochs, batch_size=batch_size, seed=seed, device=device, progress=progress,
                               checkpoint_path=checkpoint_path, resume=resume, labels=labels)
    return LearnedScore(model, sigma_min=sigma_min, sigma_max=sigma_max, history=history)
