"""The images and ground truth of ``run evaluate``, per data set (``--dataset``).

Loading (:func:`load_eval_data`: files read and checked, a user's diffusion model
read) comes before any fitting, so bad input is reported before minutes of work;
:func:`build_reference` then fits (or loads from the run's ``reference/``) the
in-project autoencoder and denoiser (``kinds._fitted_images.fit_or_load``) and
assembles a ``checkpoint_eval.CheckpointReference``.

- ``cifar10``: the ``cifar-10-batches-py`` test batch; a seeded selection of test
  images is evaluated, the fits use ``n_fit`` training images (``data_batch_*``).
  The models' inputs are the [0, 1] images (``load_user_checkpoint`` wraps a
  normaliser when the checkpoint carries one). Score at ``sigma = 0.25`` in [0, 1]
  (the paper's EDM sigma 0.5 on [-1, 1] images); the paper's robustness steps as they are.
- ``imagenet``: an ImageFolder directory (``datasets.imagenet``: torchvision class order,
  shorter side ``resize``, centre crop ``image_size``, default 256/224); the score
  model works at its own resolution (a diffusers UNet's ``sample_size``; the in-project
  denoiser at ``score_size``, default 64) on the antialiased downsample, and the
  autoencoder's tangent spaces are fitted at that resolution and lifted
  (``learned.resolution``). Fits use ``n_fit`` further images of the folder. Score
  at ``sigma = 0.6`` (the paper's EDM ImageNet-64 sigma 1.2 on [-1, 1]); the paper's
  CIFAR steps scaled to the images' norm (``_fitted_images.paper_eps``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from manifold_lab._evaluate_index import DATASETS
from manifold_lab.datasets import DatasetError, imagenet_classes, imagenet_items, load_cifar10, load_imagenet_images
from manifold_lab.datasets.imagenet import CROP, RESIZE
from manifold_lab.experiments.checkpoint_eval import CheckpointReference
from manifold_lab.experiments.kinds._fitted_images import PAPER_CIFAR_EPS, FitSettings, fit_or_load, paper_eps
from manifold_lab.experiments.kinds.fmnist import subset
from manifold_lab.experiments.seeds import derive_seed, make_generator
from manifold_lab.learned import ScoreModel, load_diffusers_score
from manifold_lab.learned.resolution import antialiased_resize, lift_basis
from manifold_lab.metrics.lpips import LPIPSAlexNet, weight_files_in

__all__ = ["DATASETS", "EvalDataOptions", "EvalData", "load_eval_data", "build_reference", "FIT_SETTINGS",
           "SCORE_SIGMA"]

#: Default score noise level per data set, pixel scale [0, 1] (the paper's EDM sigma / 2).
SCORE_SIGMA = {"cifar10": 0.25, "imagenet": 0.6}
#: The in-project fits (the score sigma is filled in per run). Latent 32: a CIFAR image
#: has more independent structure than a Fashion-MNIST one (that kind uses 16).
FIT_SETTINGS = FitSettings(latent_dim=32, ae_epochs=20, ae_width=32, denoiser_epochs=8, denoiser_width=32,
                           denoiser_sigma_min=0.02, denoiser_sigma_max=1.0, score_sigma=0.25)
#: ImageNet images decoded per batch while the fit images are collected (each is
#: downsampled at once, so the full-size batch is the only large array).
_DECODE_CHUNK = 256


@dataclass(frozen=True)
class EvalDataOptions:
    """What ``--dataset``, ``--data-dir`` and the reference options ask for.

    The first ``n_points`` images of a seeded order carry the gradient metrics, the
    first ``n_accuracy`` the accuracy; ``n_fit`` images feed the fits (CIFAR-10: training
    images; ImageNet: further images of the folder, never one of the ``n_points``),
    ``fit_epochs`` replaces both fits' epochs when given.
    ``n_classes`` must equal the number of ImageNet class folders. ``lpips_dir``: a folder
    holding LPIPS-AlexNet's two weight files (``metrics.lpips.weight_files_in``); adds
    ``score_lpips``.
    """

    dataset: str
    data_dir: str
    n_points: int
    n_accuracy: int
    seed: int = 0
    score_model: str | None = None
    score_sigma: float | None = None
    n_fit: int = 10000
    fit_epochs: int | None = None
    n_directions: int = 8
    n_classes: int | None = None
    image_size: int = CROP
    resize: int | None = None
    score_size: int = 64
    device: str = "cpu"
    lpips_dir: str | None = None

    @property
    def n_images(self) -> int:
        """Test images loaded: ``max(n_points, n_accuracy)``."""
        return max(self.n_points, self.n_accuracy)


@dataclass
class EvalData:
    """Loaded and checked inputs of :func:`build_reference`; ``info`` goes to ``results.json``
    ``reference_fits`` (``evaluated_images``: the test-batch indices or folder-relative paths
    of the ``n_points`` gradient images, in order)."""

    images: torch.Tensor
    labels: torch.Tensor
    fit_images: torch.Tensor
    quality_images: torch.Tensor
    score: ScoreModel | None
    score_shape: tuple[int, int, int]
    score_sigma: float
    paper_eps: tuple[float, ...]
    tag: str
    info: dict


def _user_score(opt: EvalDataOptions) -> ScoreModel | None:
    return None if opt.score_model is None else load_diffusers_score(opt.score_model, device=opt.device)


def _load_cifar10(opt: EvalDataOptions) -> EvalData:
    x_test, y_test = load_cifar10(opt.data_dir, split="test")
    idx = subset(opt.n_images, x_test.shape[0], make_generator(derive_seed(opt.seed, "evaluate-images")),
                 "--n-points/--n-accuracy (CIFAR-10 test split)")
    try:
        x_train, _ = load_cifar10(opt.data_dir, split="train")
    except DatasetError as exc:
        raise DatasetError(f"the in-project autoencoder and denoiser are fitted on the training batches: "
                           f"{exc}") from None
    fit = x_train[subset(min(opt.n_fit, x_train.shape[0]), x_train.shape[0],
                         make_generator(derive_seed(opt.seed, "fit-images")), "--fit-images")]
    score = _user_score(opt)
    return EvalData(x_test[idx], y_test[idx], fit, x_test, score, (3, 32, 32),
                    opt.score_sigma or SCORE_SIGMA["cifar10"], PAPER_CIFAR_EPS,
                    tag=f"evaluate-cifar10:{os.path.abspath(opt.data_dir)}",
                    info={"test_images": int(x_test.shape[0]), "train_images": int(x_train.shape[0]),
                          "evaluated_images": [int(i) for i in idx[:opt.n_points]]})


def _load_imagenet(opt: EvalDataOptions) -> EvalData:
    classes = imagenet_classes(opt.data_dir)
    if opt.n_classes is not None and len(classes) != opt.n_classes:
        raise DatasetError(f"{opt.data_dir} has {len(classes)} class folders but the model has {opt.n_classes} "
                           "outputs; labels are the sorted folder indices (torchvision), so keep every class "
                           "folder (empty ones are fine) or pass --n-classes")
    items = imagenet_items(opt.data_dir)
    perm = torch.randperm(len(items), generator=make_generator(derive_seed(opt.seed, "evaluate-images")))
    if opt.n_images > len(items):
        raise DatasetError(f"--n-points/--n-accuracy: asked for {opt.n_images} images but {opt.data_dir} holds "
                           f"{len(items)}")
    # The first n_points of the seeded order carry the gradient metrics; the fits use the
    # next n_fit (accuracy images may be among them: the fits never see a label).
    rest = perm[opt.n_points:opt.n_points + opt.n_fit]
    if rest.numel() < 2:
        raise DatasetError(f"{opt.data_dir} has {len(items)} images: {opt.n_points} carry the gradient metrics "
                           "and at least 2 more are needed for the in-project fits; lower --n-points")
    resize = opt.resize or round(opt.image_size * RESIZE / CROP)
    score = _user_score(opt)
    score_shape = tuple(score.image_shape) if score is not None else (3, opt.score_size, opt.score_size)

    def load(index):
        return load_imagenet_images([items[int(i)][0] for i in index], resize=resize, crop=opt.image_size)

    images = load(perm[:opt.n_images])
    fit = torch.cat([antialiased_resize(load(part), score_shape[1:]) for part in rest.split(_DECODE_CHUNK)])
    labels = torch.tensor([items[int(i)][1] for i in perm[:opt.n_images]], dtype=torch.int64)
    return EvalData(images, labels, fit, antialiased_resize(images[:opt.n_points], score_shape[1:]), score,
                    score_shape,
                    opt.score_sigma or SCORE_SIGMA["imagenet"], paper_eps(images),
                    tag=f"evaluate-imagenet:{os.path.abspath(opt.data_dir)}:{opt.image_size}/{resize}"
                        f"->{score_shape[1]}x{score_shape[2]}",
                    info={"images_in_folder": len(items), "classes": len(classes), "image_size": opt.image_size,
                          "evaluated_images": [items[int(i)][0].relative_to(opt.data_dir).as_posix()
                                               for i in perm[:opt.n_points]],
                          "resize": resize, "score_resolution": list(score_shape[1:]),
                          "resolution_rule": "cos(A g, s(A x)), A = antialiased bilinear downsample; "
                                             "tangents span(A^T B) of a score-resolution autoencoder"})


def load_eval_data(opt: EvalDataOptions) -> EvalData:
    """Read and check the data (and a user's score model) of ``opt.dataset``; no fitting.

    Raises
    ------
    DatasetError, FileNotFoundError, ImportError, ValueError
        One-line messages (missing or corrupt files, too few images, a score
        model directory that cannot be read).
    """
    if opt.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {opt.dataset!r}; choose one of {', '.join(DATASETS)}")
    if not Path(opt.data_dir).is_dir():
        raise DatasetError(f"--data-dir {opt.data_dir} is not a directory")
    return (_load_cifar10 if opt.dataset == "cifar10" else _load_imagenet)(opt)


def build_reference(data: EvalData, opt: EvalDataOptions, *, cache_dir: str | os.PathLike | None
                    ) -> CheckpointReference:
    """Fit (or load from ``cache_dir``) the autoencoder and denoiser; the evaluation's reference."""
    settings = replace(FIT_SETTINGS, score_sigma=data.score_sigma)
    if opt.fit_epochs is not None:
        settings = replace(settings, ae_epochs=opt.fit_epochs, denoiser_epochs=opt.fit_epochs)
    # A user's score model replaces the denoiser: nothing is fitted for it, and the tag names
    # it so its quality figures are cached apart from the in-project denoiser's.
    tag = data.tag if opt.score_model is None else f"{data.tag}+{os.path.abspath(opt.score_model)}"
    fitted = fit_or_load(settings, data.fit_images, data.quality_images, seed=opt.seed, tag=tag,
                         cache_dir=cache_dir, device=opt.device, score=data.score)
    score = fitted.score
    image_shape = tuple(data.images.shape[1:])
    report = {**fitted.quality, **data.info,
              "score_model": opt.score_model or "in-project denoiser (reference/ of the run directory)"}
    if data.score_shape == image_shape:
        tangents, to_score = fitted.autoencoder.tangent_basis, None
    else:
        hw = data.score_shape[1:]

        def to_score(x):
            return antialiased_resize(x, hw)

        def tangents(x):
            return lift_basis(fitted.autoencoder.tangent_basis(to_score(x)), data.score_shape, x.shape[-2:])

    lpips = None
    if opt.lpips_dir is not None:
        paths = weight_files_in(opt.lpips_dir)
        lpips = LPIPSAlexNet(*paths)
        report["lpips_weights"] = [str(p) for p in paths]
    return CheckpointReference(data.images, data.labels, tangent_basis=tangents, score=score,
                               score_sigma=data.score_sigma, to_score_space=to_score, paper_eps=data.paper_eps,
                               n_directions=opt.n_directions, report=report, lpips=lpips)
