"""Learned ground truth of image kinds, fitted once per run and cached in the run directory.

An image kind has no exact manifold or score: its tangent spaces come from a
convolutional autoencoder (``learned.fit_autoencoder``, decoder Jacobian at the
encoder's latent) and its score from a noise-conditional denoiser
(``learned.fit_denoiser``, Tweedie). Both are fitted on the kind's training
images with seeds derived from the run's base seed. With a ``cache_dir`` the
fits are written there (each file atomically: ``autoencoder-<fp>.pt``,
``denoiser-<fp>.pt`` and, last, ``fits-<fp>.json`` with their quality figures),
``<fp>`` a fingerprint of everything the fits depend on; a later build with the
same fingerprint loads them (resume, and every model job of a sweep), and a
build of another configuration fits its own files beside them. A half-written
set (no ``fits-<fp>.json``) is fitted again. A kind whose score comes from
elsewhere (a user's pretrained diffusion model) passes it as ``score``: only the
autoencoder is fitted and cached, the quality figures measure the given score.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch

import manifold_lab
from manifold_lab._io import atomic_write_bytes
from manifold_lab.experiments.seeds import derive_seed, make_generator
from manifold_lab.learned import AutoencoderManifold, LearnedScore, ScoreModel, fit_autoencoder, fit_denoiser

__all__ = ["FitSettings", "FittedImages", "fit_or_load", "paper_eps", "CIFAR_RMS_NORM", "PAPER_CIFAR_EPS"]

#: The paper's CIFAR-10 step sizes of the unit-direction robustness (docs/theory.md, its
#: released code; the figure uses 2.64).
PAPER_CIFAR_EPS = (1.44, 2.64, 4.83, 8.86)
#: Root-mean-square norm of a CIFAR-10 image in [0, 1]: sqrt(3072 * E[x^2]) with the
#: standard per-channel means (0.4914, 0.4822, 0.4465) and standard deviations
#: (0.2470, 0.2435, 0.2616): E[x^2] = mean^2 + std^2 averaged over channels = 0.2874.
CIFAR_RMS_NORM = math.sqrt(3072 * sum(m * m + s * s for m, s in (
    (0.4914, 0.2470), (0.4822, 0.2435), (0.4465, 0.2616))) / 3)
#: Test images on which the fits' quality figures are measured.
_QUALITY_IMAGES = 1000


@dataclass(frozen=True)
class FitSettings:
    """Settings of the two fits (fields of the image kinds' specs)."""

    latent_dim: int
    ae_epochs: int
    ae_width: int
    denoiser_epochs: int
    denoiser_width: int
    denoiser_sigma_min: float
    denoiser_sigma_max: float
    score_sigma: float

    @classmethod
    def of(cls, spec) -> "FitSettings":
        """The settings a kind spec declares as fields of the same names."""
        return cls(**{f.name: getattr(spec, f.name) for f in fields(cls)})


@dataclass
class FittedImages:
    """The fitted autoencoder manifold, the learned score and their quality figures."""

    autoencoder: AutoencoderManifold
    score: ScoreModel
    quality: dict


def paper_eps(images: torch.Tensor) -> tuple[float, ...]:
    """The paper's CIFAR step sizes scaled to these images' RMS norm:
    ``eps_i * sqrt(mean ||x||^2) / CIFAR_RMS_NORM`` (the same fraction of a typical image)."""
    rms = float(images.reshape(images.shape[0], -1).double().square().sum(-1).mean().sqrt())
    return tuple(float(f"{e * rms / CIFAR_RMS_NORM:.3g}") for e in PAPER_CIFAR_EPS)


def _fingerprint(settings: FitSettings, seed: int, n_images: int, tag: str) -> str:
    config = {"settings": settings.__dict__, "seed": seed, "n_images": n_images, "tag": tag,
              "version": manifold_lab.__version__}
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _quality(ae: AutoencoderManifold, score: ScoreModel, test: torch.Tensor, sigma: float,
             seed: int) -> dict:
    """Reconstruction MSE per pixel of the autoencoder and denoising MSE of the denoiser
    at ``sigma``, on held-out images, beside the pixel variance and ``sigma^2``."""
    x = test[:_QUALITY_IMAGES]
    with torch.no_grad():
        recon = float((ae.reconstruct(x) - x).square().mean())
        noise = torch.randn(x.shape, generator=make_generator(derive_seed(seed, "fit-quality")))
        denoised = score.denoise(x + sigma * noise, sigma).reshape(x.shape)
        den = float((denoised - x).square().mean())
    return {"autoencoder_test_mse": recon, "pixel_variance": float(x.var()),
            "denoiser_test_mse": den, "denoiser_sigma": sigma, "noise_mse": sigma * sigma,
            "quality_images": int(x.shape[0])}


def fit_or_load(settings: FitSettings, train: torch.Tensor, test: torch.Tensor, *, seed: int,
                tag: str, cache_dir: str | os.PathLike | None, device: str | torch.device = "cpu",
                score: ScoreModel | None = None) -> FittedImages:
    """Fit (or load from ``cache_dir``) the autoencoder and the denoiser on ``train``.

    Parameters
    ----------
    settings : FitSettings
    train : Tensor, shape [n, c, h, w]
        Training images in [0, 1].
    test : Tensor, shape [m, c, h, w]
        Held-out images for the quality figures.
    seed : int
        Run base seed (the fits' seeds are derived from it).
    tag : str
        Name of the kind (part of the fingerprint).
    cache_dir : path or None
        Where fits are kept; ``None``: fit in memory, nothing written.
    device : str or torch.device
        Where the networks are trained; they are returned (and saved) on the CPU.
    score : ScoreModel, optional
        A score to use instead of fitting the denoiser (nothing is fitted or saved
        for it; ``tag`` should then name it, so its quality figures are its own).
    """
    fp = _fingerprint(settings, seed, int(train.shape[0]), tag)
    folder = None if cache_dir is None else Path(cache_dir)
    if folder is not None:
        ae_path, den_path = folder / f"autoencoder-{fp}.pt", folder / f"denoiser-{fp}.pt"
        info_path = folder / f"fits-{fp}.json"
        if info_path.exists():
            quality = json.loads(info_path.read_text(encoding="utf-8"))
            learned = score if score is not None else LearnedScore.load(den_path)
            return FittedImages(AutoencoderManifold.load(ae_path), learned, quality)
        folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ae = fit_autoencoder(train, settings.latent_dim, epochs=settings.ae_epochs, width=settings.ae_width,
                         seed=derive_seed(seed, "autoencoder") % 2 ** 31, progress=False, device=device)
    ae.model.to("cpu")
    t1 = time.perf_counter()
    fitted_score = score is None
    if fitted_score:
        score = fit_denoiser(train, sigma_min=settings.denoiser_sigma_min, sigma_max=settings.denoiser_sigma_max,
                             epochs=settings.denoiser_epochs, width=settings.denoiser_width,
                             seed=derive_seed(seed, "denoiser") % 2 ** 31, progress=False, device=device)
        score.model.to("cpu")
    t2 = time.perf_counter()
    quality = {"fingerprint": fp, "fit_images": int(train.shape[0]), "autoencoder_fit_s": t1 - t0,
               "denoiser_fit_s": t2 - t1,
               **_quality(ae, score, test, settings.score_sigma, seed)}
    if folder is not None:
        ae.save(ae_path)
        if fitted_score:
            score.save(den_path)
        # Written last: its presence means both checkpoints are complete.
        atomic_write_bytes(info_path, (json.dumps(quality, indent=2) + "\n").encode("utf-8"))
    return FittedImages(ae, score, quality)
