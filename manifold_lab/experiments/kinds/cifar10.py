"""Data kind ``cifar10``: CIFAR-10 from a user's folder, learned tangents, fitted or pretrained score.

The paper's own image setting (docs/theory.md, "The paper's image protocols"). Images
come from ``data_dir``, a folder that holds (or is) the standard
``cifar-10-batches-py`` folder (``datasets.load_cifar10``, restricted unpickler;
nothing is downloaded). As for every image kind (``kinds.images``, whose machinery this kind uses):
models train on the 50,000 training images (each draws its own ``n_train``), the
first half of the test split carries the gradient and sensitivity metrics, the
second half the accuracy; tangent spaces come from a convolutional autoencoder
(3 x 32 x 32, latent ``latent_dim``) fitted once per run on ``n_fit`` training
images and cached in ``<run>/reference/``; the regime reference is the sweep's
unregularised models.

Score. From the in-project denoiser (fitted with the autoencoder), or, with
``score_model``, from a user's local diffusers DDPM directory (e.g. a copy of
``google/ddpm-cifar10-32``, read by ``learned.load_diffusers_score``; then no
denoiser is fitted). The paper takes the EDM CIFAR-10 denoiser at sigma = 0.5 for
inputs in [-1, 1]; ``x' = 2x - 1`` doubles every noise level, so the same noise
is ``score_sigma = 0.25`` on the library's [0, 1] images (the default). The score
is taken at the clean test image, as in the paper.

Metric fields: those of every image kind (``kinds.images``), with the paper's
unit-direction robustness ``paper_on``/``paper_off`` at its own steps eps in
{1.44, 2.64, 4.83, 8.86} (CIFAR-10 itself, so no rescaling; documented: 2.64), and
the LPIPS fields (1 - LPIPS-AlexNet, the paper's measure, at 32 px as the paper)
only when both LPIPS weight files are on disk (``lpips_dir``, or
``lpips_backbone``/``lpips_linear`` or their defaults, see ``metrics.lpips``), else
the fields are left out of the rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from manifold_lab.datasets import load_cifar10
from manifold_lab.datasets._files import DatasetError
from manifold_lab.experiments.kinds._fitted_images import PAPER_CIFAR_EPS, fit_or_load
from manifold_lab.experiments.kinds.images import (
    PAPER_SCORE_SIGMA, ImageKindSpec, ImageReference, ImageSplits, fit_subset, load_splits,
)
from manifold_lab.experiments.kinds.registry import register_kind
from manifold_lab.metrics.lpips import LPIPSAlexNet, default_backbone_path, default_linear_path, weight_files_in

__all__ = ["Cifar10Spec", "Cifar10Reference", "PAPER_SCORE_SIGMA", "lpips_weight_paths"]

#: How to get the data (the one-line error of a missing ``data_dir``).
_HOW = ("cifar10 reads CIFAR-10 from --data-dir DIR (a folder that holds or is cifar-10-batches-py: "
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, extracted)")


def lpips_weight_paths(backbone: str | None, linear: str | None) -> tuple[Path, Path] | None:
    """The two LPIPS weight files (given, else ``metrics.lpips`` defaults) when both exist, else None.

    A path that is given but missing is a one-line ``FileNotFoundError``: the user
    asked for LPIPS. Missing default files only mean "no LPIPS field".
    """
    for given, what in ((backbone, "lpips_backbone"), (linear, "lpips_linear")):
        if given is not None and not Path(given).is_file():
            raise FileNotFoundError(f"{what} {given} not found (see metrics.lpips for the weight files)")
    paths = (Path(backbone) if backbone is not None else default_backbone_path(),
             Path(linear) if linear is not None else default_linear_path())
    return paths if all(p is not None and p.is_file() for p in paths) else None


class Cifar10Reference(ImageReference):
    """Ground truth of one ``cifar10`` run: ``ImageReference`` that also reports its
    score model and LPIPS weight files."""

    def __init__(self, *args, lpips_paths: tuple[Path, Path] | None, score_model: str | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lpips_paths, self.score_model = lpips_paths, score_model

    def fit_report(self):
        return {**super().fit_report(), "score_model": self.score_model,
                "lpips_weights": None if self.lpips_paths is None else [str(p) for p in self.lpips_paths]}


@register_kind
@dataclass(frozen=True)
class Cifar10Spec(ImageKindSpec):
    """CIFAR-10 with an autoencoder's tangent spaces and a fitted or pretrained score.

    Fields of :class:`~manifold_lab.experiments.kinds.images.ImageKindSpec` (with
    CIFAR-sized defaults), and: ``data_dir``, a folder that holds or is
    ``cifar-10-batches-py`` (required; no default location); ``score_model``: a local
    diffusers DDPM directory used instead of the denoiser; ``lpips_dir`` or
    ``lpips_backbone``/``lpips_linear``: LPIPS weight files (default: see
    :func:`lpips_weight_paths`).
    """

    kind = "cifar10"
    #: LPIPS at the native 32 px, as the paper's CIFAR protocol (AlexNet maps 7, 3, 1, 1, 1).
    lpips_size: ClassVar[int | None] = None

    n_fit: int = 50000
    latent_dim: int = 64
    ae_epochs: int = 30
    ae_width: int = 64
    denoiser_epochs: int = 30
    denoiser_width: int = 64
    score_model: str | None = None
    lpips_backbone: str | None = None
    lpips_linear: str | None = None

    def load(self) -> ImageSplits:
        if self.data_dir is None:
            raise DatasetError(f"no --data-dir given: {_HOW}")
        return load_splits(self.data_dir, load_cifar10)

    def lpips_paths(self) -> tuple[Path, Path] | None:
        """The LPIPS weight files: ``lpips_dir``'s, else the given or default paths."""
        if self.lpips_dir is not None:
            return weight_files_in(self.lpips_dir)
        return lpips_weight_paths(self.lpips_backbone, self.lpips_linear)

    def load_lpips(self) -> LPIPSAlexNet | None:
        paths = self.lpips_paths()
        return None if paths is None else LPIPSAlexNet(*paths)

    def check_inputs(self) -> None:
        """The data (read and validated once per process), the diffusers directory's
        layout and any given LPIPS file, before a run directory is written."""
        self.load()
        if self.score_model is not None:
            from manifold_lab.learned.diffusers_score import find_diffusers_layout
            find_diffusers_layout(self.score_model)
        self.lpips_paths()

    def build(self, seed, *, cache_dir: str | os.PathLike | None = None, fit_runner=None):
        self.check_inputs()
        splits = self.load()
        train, labels = fit_subset(splits, self.n_fit, seed)
        score, tag = None, self.kind
        if self.score_model is not None:
            from manifold_lab.learned import load_diffusers_score
            score = load_diffusers_score(self.score_model)
            tag = f"{self.kind}+{os.path.abspath(self.score_model)}"
        fitted = fit_or_load(self.fit_settings(), train, splits.x_test, seed=seed, tag=tag,
                             cache_dir=cache_dir, score=score, labels=labels, runner=fit_runner)
        return Cifar10Reference(splits, fitted, score_sigma=self.score_sigma, eps=PAPER_CIFAR_EPS,
                                n_directions=self.n_directions, lpips=self.load_lpips(),
                                lpips_size=self.lpips_size, score_draws=self.score_draws, seed=seed,
                                bayes_sigmas=self.bayes_sigmas,
                                lpips_paths=self.lpips_paths(), score_model=self.score_model)

    def model_inputs(self):
        return {"in_channels": 3, "n_classes": 10}
