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
from typing import Callable

import torch

import manifold_lab
from manifold_lab._io import atomic_write_bytes
from manifold_lab.experiments.backends.workers import run_in_workers, usable_cpus
from manifold_lab.experiments.seeds import derive_seed, make_generator
from manifold_lab.learned import AutoencoderManifold, LearnedScore, ScoreModel, fit_autoencoder, fit_denoiser

__all__ = ["FitSettings", "FittedImages", "fit_or_load", "paper_eps", "CIFAR_RMS_NORM", "PAPER_CIFAR_EPS",
           "QUALITY_SIGMAS"]

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
    #: Fit the denoiser with the images' labels: one class-conditional network that
    #: gives the unconditional score and the learned Bayes gradient (learned.fit_denoiser).
    class_conditional: bool = False

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


#: Noise levels of the denoiser's reported test MSE (beside the kind's own score sigma).
QUALITY_SIGMAS = (0.1, 0.25, 0.5)


def _quality(ae: AutoencoderManifold, score: ScoreModel, test: torch.Tensor, sigma: float,
             seed: int) -> dict:
    """Reconstruction MSE per pixel of the autoencoder, and denoising MSE per pixel of
    the denoiser at ``sigma`` and at each of :data:`QUALITY_SIGMAS` on held-out images,
    beside the pixel variance and the noise's own MSE ``sigma^2`` (a denoiser that
    helps is far below it)."""
    x = test[:_QUALITY_IMAGES]
    noise = torch.randn(x.shape, generator=make_generator(derive_seed(seed, "fit-quality")))
    with torch.no_grad():
        recon = float((ae.reconstruct(x) - x).square().mean())

        def mse(s: float) -> float:
            return float((score.denoise(x + s * noise, s).reshape(x.shape) - x).square().mean())
        by_sigma = {f"{s:g}": mse(s) for s in sorted({*QUALITY_SIGMAS, sigma})}
    return {"autoencoder_test_mse": recon, "pixel_variance": float(x.var()),
            "denoiser_test_mse": by_sigma[f"{sigma:g}"], "denoiser_sigma": sigma, "noise_mse": sigma * sigma,
            "denoiser_test_mse_by_sigma": by_sigma,
            "noise_mse_by_sigma": {k: float(k) ** 2 for k in by_sigma},
            "quality_images": int(x.shape[0])}


#: Image-epochs (fit images x epochs, both fits) above which the two fits run side by
#: side in two worker processes: below it, starting a worker (importing torch, about
#: 2 s) costs more than it saves. Each fit then has half the CPUs' threads; one conv
#: net on two threads gains little over one (README, "Speed on a shared machine").
PARALLEL_FIT_WORK = 20000


def _fit_in_parallel(settings: FitSettings, train: torch.Tensor, device, n_fits: int) -> bool:
    work = int(train.shape[0]) * (settings.ae_epochs + settings.denoiser_epochs)
    return n_fits > 1 and str(device) == "cpu" and usable_cpus() >= 2 and work >= PARALLEL_FIT_WORK


def _timed(fit) -> tuple:
    t, c = time.perf_counter(), time.process_time()
    model = fit()
    model.model.to("cpu")
    return model, time.perf_counter() - t, time.process_time() - c


def _fit_autoencoder(settings: FitSettings, train: torch.Tensor, seed: int, device) -> tuple:
    """The autoencoder fit (module-level, so a worker process can run it): ``(ae, wall s, cpu s)``."""
    return _timed(lambda: fit_autoencoder(
        train, settings.latent_dim, epochs=settings.ae_epochs, width=settings.ae_width,
        seed=derive_seed(seed, "autoencoder") % 2 ** 31, progress=False, device=device))


def _fit_denoiser(settings: FitSettings, train: torch.Tensor, seed: int, device,
                  labels: torch.Tensor | None = None) -> tuple:
    """The denoiser fit (class-conditional with ``labels``): ``(score, wall s, cpu s)``."""
    conditional = {} if labels is None else {"labels": labels, "n_classes": int(labels.max()) + 1}
    return _timed(lambda: fit_denoiser(
        train, sigma_min=settings.denoiser_sigma_min, sigma_max=settings.denoiser_sigma_max,
        epochs=settings.denoiser_epochs, width=settings.denoiser_width,
        seed=derive_seed(seed, "denoiser") % 2 ** 31, progress=False, device=device, **conditional))


def fit_or_load(settings: FitSettings, train: torch.Tensor, test: torch.Tensor, *, seed: int,
                tag: str, cache_dir: str | os.PathLike | None, device: str | torch.device = "cpu",
                score: ScoreModel | None = None, labels: torch.Tensor | None = None,
                runner: Callable[[list], list] | None = None) -> FittedImages:
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
    labels : Tensor, shape [n], optional
        Classes of ``train``: with ``settings.class_conditional`` the denoiser is fitted
        class-conditionally (its score then also gives the learned Bayes gradient).
    runner : callable, optional
        ``runner([(fn, args), ...]) -> [fn(*args), ...]``: runs the fits (the sweep's
        worker pool, which trains models on the cores the fits leave free); the
        functions are module-level and their arguments picklable. ``None``: see below.

    Without a ``runner``, on the CPU with two or more cores and enough work (:data:`PARALLEL_FIT_WORK`)
    the autoencoder and the denoiser are fitted side by side in two worker
    processes; the quality figures record each fit's wall and CPU seconds.
    """
    labels = labels if settings.class_conditional else None
    fp = _fingerprint(settings, seed, int(train.shape[0]), tag + ("+labels" if labels is not None else ""))
    folder = None if cache_dir is None else Path(cache_dir)
    if folder is not None:
        ae_path, den_path = folder / f"autoencoder-{fp}.pt", folder / f"denoiser-{fp}.pt"
        info_path = folder / f"fits-{fp}.json"
        if info_path.exists():
            quality = json.loads(info_path.read_text(encoding="utf-8"))
            learned = score if score is not None else LearnedScore.load(den_path)
            return FittedImages(AutoencoderManifold.load(ae_path), learned, quality)
        folder.mkdir(parents=True, exist_ok=True)
    fitted_score = score is None
    calls = [(_fit_autoencoder, (settings, train, seed, device))]
    if fitted_score:
        calls.append((_fit_denoiser, (settings, train, seed, device, labels)))
    t0 = time.perf_counter()
    parallel = len(calls) > 1 if runner is not None else _fit_in_parallel(settings, train, device, len(calls))
    if runner is not None:
        results = runner(calls)
    elif parallel:
        results = run_in_workers(calls, threads=max(1, usable_cpus() // len(calls)))
    else:
        results = [fn(*args) for fn, args in calls]
    wall = time.perf_counter() - t0
    (ae, ae_s, ae_cpu), (score, den_s, den_cpu) = results[0], (results[1] if fitted_score else (score, 0.0, 0.0))
    quality = {"fingerprint": fp, "fit_images": int(train.shape[0]), "autoencoder_fit_s": ae_s,
               "denoiser_fit_s": den_s, "autoencoder_fit_cpu_s": ae_cpu, "denoiser_fit_cpu_s": den_cpu,
               "fits_wall_s": wall, "fits_in_parallel": parallel,
               **_quality(ae, score, test, settings.score_sigma, seed)}
    if folder is not None:
        ae.save(ae_path)
        if fitted_score:
            score.save(den_path)
        # Written last: its presence means both checkpoints are complete.
        atomic_write_bytes(info_path, (json.dumps(quality, indent=2) + "\n").encode("utf-8"))
    return FittedImages(ae, score, quality)
