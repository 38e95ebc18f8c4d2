"""Data kind ``fmnist``: real Fashion-MNIST images with learned ground truth.

Training images are the 60,000 training images (each model draws its own
``n_train``); held-out points are test images (the first half of the test set
carries the gradient and sensitivity metrics, the second half the accuracy).
Tangent spaces come from a convolutional autoencoder and the reference
gradient from a denoiser's Tweedie score at ``score_sigma``, both fitted once
per run on ``n_fit`` training images and cached in the run directory
(``kinds._fitted_images``). There is no Bayes-optimal model: the regime
reference is the sweep's unregularised models (:data:`UNREGULARISED`).

Besides the common metric fields, rows of this kind carry ``score_ssim`` (SSIM
of the input gradient and the score, as images), the paper's unit-direction
robustness ``paper_on``/``paper_off`` at its CIFAR step sizes scaled to the
image norm (``_fitted_images.paper_eps``; the documented step is the second,
as the paper's figure uses 2.64) and the curve ``paper_curve`` over every step.
With ``lpips_dir`` (a folder holding LPIPS-AlexNet's two weight files, see
:func:`~manifold_lab.metrics.lpips.weight_files_in`) rows also carry
``score_lpips``, the paper's perceptual similarity (1 - LPIPS) of the input
gradient and the score, both resized to ``LPIPS_SIZE`` px; nothing is downloaded,
and without the folder the field is absent.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable

import torch

from manifold_lab.datasets import load_fashion_mnist
from manifold_lab.metrics.lpips import LPIPSAlexNet, weight_files_in
from manifold_lab.experiments.kinds._fitted_images import FitSettings, fit_or_load, paper_eps
from manifold_lab.experiments.kinds.registry import register_kind
from manifold_lab.experiments.metric_fields import gallery_curve, paper_curve
from manifold_lab.experiments.reference import UNREGULARISED, DataSpec, Reference
from manifold_lab.experiments.seeds import derive_seed, make_generator

__all__ = ["FashionMnistSpec", "FashionMnistReference", "ImageReference", "ImageSplits", "load_splits", "subset",
           "split_counts"]

#: Held-out images whose input gradients (and score) every row keeps, for the gallery figure.
GALLERY_IMAGES = 4
#: Index of the documented step in the scaled paper steps (the paper's figure: 2.64).
PAPER_EPS_INDEX = 1
#: Side (px) the gradient and score images are resized to for LPIPS (AlexNet's relu3..5
#: maps are 3x3 at 64 px; at 28 px the deeper maps vanish).
LPIPS_SIZE = 64


@dataclass(frozen=True)
class ImageSplits:
    """Training and test images ``[n, c, h, w]`` in [0, 1] with labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def split_counts(splits: ImageSplits) -> dict[str, int]:
    """Images per pool (``reference.POOLS``): the training split, and the test split's first
    half (metrics) and second half (accuracy), as ``ImageReference`` draws them."""
    n_test = splits.x_test.shape[0]
    return {"train": splits.x_train.shape[0], "eval": n_test // 2, "accuracy": n_test - n_test // 2}


def load_splits(data_dir: str | None, loader: Callable = load_fashion_mnist) -> ImageSplits:
    """Both splits from ``data_dir``, read by ``loader(data_dir, split=...)``
    (default: Fashion-MNIST; ``data_dir=None`` is its Debian package's folder).

    Decoding the files takes seconds, and every model job of a sweep builds
    the reference: the decoded splits are kept per process (at most two folders),
    keyed by the loader, the folder and the size and modification time of its files, so a
    changed file is read again. The tensors are shared: callers index, never write.
    """
    return _load_splits_cached(loader, data_dir, _folder_stamp(data_dir))


def _folder_stamp(data_dir: str | None) -> tuple:
    if data_dir is None or not os.path.isdir(data_dir):
        return ()
    entries = []
    for root, _, files in os.walk(data_dir):
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            entries.append((os.path.join(root, name), st.st_size, st.st_mtime_ns))
    return tuple(sorted(entries))


@functools.lru_cache(maxsize=2)
def _load_splits_cached(loader: Callable, data_dir: str | None, stamp: tuple) -> ImageSplits:
    x_train, y_train = loader(data_dir, split="train")
    x_test, y_test = loader(data_dir, split="test")
    if x_test.shape[0] < 2:
        raise ValueError(f"the test split of {data_dir!r} has {x_test.shape[0]} images; need >= 2")
    return ImageSplits(x_train, y_train, x_test, y_test)


def subset(n: int, pool: int, generator: torch.Generator, what: str) -> torch.Tensor:
    """``n`` distinct indices into ``range(pool)``; one-line error if the pool is too small."""
    if n > pool:
        raise ValueError(f"{what}: asked for {n} images but only {pool} are available; "
                         f"lower the preset's count or give the full data set")
    return torch.randperm(pool, generator=generator)[:n]


def fit_images(splits: ImageSplits, n_fit: int, seed: int) -> torch.Tensor:
    """The ``n_fit`` training images both fits see (a seeded subset)."""
    idx = subset(n_fit, splits.x_train.shape[0], make_generator(derive_seed(seed, "fit-images")), "n_fit")
    return splits.x_train[idx]


class ImageReference(Reference):
    """Ground truth of one run of an image kind with fitted tangents and a score
    (``fmnist``, ``cifar10``; see the module docstring)."""

    def __init__(self, splits: ImageSplits, fitted, *, score_sigma: float, eps: tuple[float, ...],
                 n_directions: int, lpips: LPIPSAlexNet | None = None,
                 lpips_size: int | None = LPIPS_SIZE) -> None:
        self.splits, self.fitted, self.lpips, self.lpips_size = splits, fitted, lpips, lpips_size
        self.score_sigma, self.eps, self.n_directions = float(score_sigma), tuple(eps), int(n_directions)
        self.half = splits.x_test.shape[0] // 2

    def training_data(self, n, *, generator):
        idx = subset(n, self.splits.x_train.shape[0], generator, "n_train")
        return self.splits.x_train[idx], self.splits.y_train[idx]

    def eval_points(self, n, *, generator):
        idx = subset(n, self.half, generator, "eval n_points (first half of the test split)")
        return self.splits.x_test[idx], self.splits.y_test[idx]

    def accuracy_points(self, n, *, generator):
        pool = self.splits.x_test.shape[0] - self.half
        idx = self.half + subset(n, pool, generator, "eval n_accuracy (second half of the test split)")
        return self.splits.x_test[idx], self.splits.y_test[idx]

    def tangent_basis(self, x):
        return self.fitted.autoencoder.tangent_basis(x).detach()

    def reference_gradients(self, x, y):
        with torch.no_grad():
            return self.fitted.score.score(x, self.score_sigma).detach(), None

    def fit_report(self):
        return {**self.fitted.quality, "paper_eps": list(self.eps), "paper_eps_documented": self.eps[PAPER_EPS_INDEX],
                "score_sigma": self.score_sigma}

    def eval_extras(self, x, y, *, device="cpu", dtype=torch.float32):
        extras = {"image_shape": tuple(x.shape[1:]), "paper_eps": self.eps,
                  "paper_eps_index": PAPER_EPS_INDEX, "n_directions": self.n_directions,
                  "gallery_images": GALLERY_IMAGES,
                  "curves": {"paper_curve": paper_curve, "gallery": gallery_curve}}
        if self.lpips is not None:
            extras.update(lpips=self.lpips, lpips_size=self.lpips_size)
        return extras


@register_kind
@dataclass(frozen=True)
class FashionMnistSpec(DataSpec):
    """Fashion-MNIST with an autoencoder's tangent spaces and a denoiser's score.

    ``data_dir``: folder of the four IDX files (``None``: the Debian package
    ``dataset-fashion-mnist``). ``n_fit`` training images feed both fits
    (autoencoder: latent ``latent_dim``, ``ae_width`` channels, ``ae_epochs``;
    denoiser: ``denoiser_width`` channels, ``denoiser_epochs``, noise levels
    log-uniform in ``[denoiser_sigma_min, denoiser_sigma_max]``). The score is
    taken at ``score_sigma`` at the clean test image; ``n_directions`` unit
    directions per image for the paper's robustness variant; ``lpips_dir``: a
    folder with LPIPS-AlexNet's weight files (``score_lpips``; ``None``: no LPIPS).
    """

    kind = "fmnist"
    regime_reference = UNREGULARISED
    fits_reference = True

    data_dir: str | None = None
    n_fit: int = 10000
    latent_dim: int = 16
    ae_epochs: int = 20
    ae_width: int = 32
    denoiser_epochs: int = 8
    denoiser_width: int = 16
    denoiser_sigma_min: float = 0.02
    denoiser_sigma_max: float = 1.0
    score_sigma: float = 0.1
    n_directions: int = 8
    lpips_dir: str | None = None

    def load_lpips(self) -> LPIPSAlexNet | None:
        """The LPIPS network of ``lpips_dir`` (``None`` without one); one-line errors."""
        return None if self.lpips_dir is None else LPIPSAlexNet(*weight_files_in(self.lpips_dir))

    def fit_settings(self) -> FitSettings:
        return FitSettings.of(self)

    def check_inputs(self) -> None:
        """The data files (read and validated once per process) and the LPIPS weight
        files, before a run directory is written."""
        load_splits(self.data_dir)
        if self.lpips_dir is not None:
            weight_files_in(self.lpips_dir)

    def available_counts(self) -> dict[str, int]:
        return split_counts(load_splits(self.data_dir))

    def own_counts(self) -> dict[str, dict[str, int]]:
        return {"train": {"data.n_fit": self.n_fit}}

    def build(self, seed, *, cache_dir: str | os.PathLike | None = None):
        splits = load_splits(self.data_dir)
        train = fit_images(splits, self.n_fit, seed)
        lpips = self.load_lpips()  # before the fits: a bad folder fails at once
        fitted = fit_or_load(self.fit_settings(), train, splits.x_test, seed=seed, tag=self.kind,
                             cache_dir=cache_dir)
        return ImageReference(splits, fitted, score_sigma=self.score_sigma, eps=paper_eps(train),
                              n_directions=self.n_directions, lpips=lpips)

    def model_inputs(self):
        return {"in_channels": 1, "n_classes": 10, "image_size": 28}


#: The former name of :class:`ImageReference` (kept for users' scripts).
FashionMnistReference = ImageReference
