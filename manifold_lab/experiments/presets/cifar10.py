"""The ``cifar10`` preset: the paper's CIFAR-10 protocol (docs/theory.md), data from ``--data-dir``."""

from __future__ import annotations

import dataclasses

from manifold_lab.experiments import paper_units
from manifold_lab.experiments.kinds import Cifar10Spec
from manifold_lab.experiments.presets.images import IMAGE_SIGMA as _IMAGE_SIGMA
from manifold_lab.experiments.presets.images import IMAGE_SIGMAS as _IMAGE_SIGMAS
from manifold_lab.experiments.presets.registry import register_preset
from manifold_lab.experiments.specs import EvalSpec, ModelSpec, Preset, TrainSpec, log_strengths

__all__ = ["CIFAR10", "CIFAR10_QUICK"]

# cifar10 (the paper's CIFAR-10 protocol, docs/theory.md): ResNet-18 (CIFAR variant, inputs
# in [0, 1]), SGD momentum 0.9, weight decay 5e-4, batch 128, 200 epochs, lr 0.025 x0.1
# at 75 % and 87.5 % of the epochs, random crop (pad 4) + horizontal flip. The paper's
# 30 log-spaced strengths per regulariser, in the paper's units (_CIFAR_PAPER_GRID, kept
# in the docs beside ours), mapped to the library's per-example units
# (experiments.paper_units; the grids given to the objectives are ours):
#   gradient norm  c 1e-5 ... 1e2      -> weight 1e5 c / 128^2 = 6.10 c   (6.10e-5 ... 610)
#   smoothness     1e-4 ... 1e4        -> the same (per-example mean logit change at sigma 0.1)
#   noise sigma    1e-3 ... 1e2        -> the same (per-pixel std on [0, 1] images)
#   PGD-L2         eps_batch 1e-5 ... 1e4 -> per-example eps_batch / sqrt(128)  (8.84e-7 ... 884)
# PGD: 10 steps (the paper's), step 2.5 eps / 10 (ours; the paper: 2 eps / 10), inputs
# clipped to [0, 1]. Gradient norm: the paper's lr rule, lr / (c / 0.01) for c > 0.01, is
# GradientNorm's lr_weight at c = 0.01 (weight 0.0610). One seed (the paper's), 256 metric images (~200 in the
# paper), 5,000 accuracy images (the second half of the test split). Fits on all 50,000
# training images (autoencoder latent 64; denoiser, or a user's DDPM via score_model).
_CIFAR_PAPER_GRID = {
    "gradient_norm": log_strengths(1e-5, 1e2, 30),
    "smoothness": log_strengths(1e-4, 1e4, 30),
    "noise_augmentation": log_strengths(1e-3, 1e2, 30),
    "pgd_l2": log_strengths(1e-5, 1e4, 30),
}
_CIFAR_TO_OURS = {"gradient_norm": paper_units.gradient_norm_weight, "pgd_l2": paper_units.pgd_eps}
_CIFAR_OPTIONS = {"pgd_l2": {"steps": 10, "bounds": (0.0, 1.0)},
                  "gradient_norm": {"lr_weight": paper_units.gradient_norm_weight(0.01)}}
_CIFAR_SWEEP = tuple(
    (name, tuple(_CIFAR_TO_OURS.get(name, float)(v) for v in grid), _CIFAR_OPTIONS.get(name, {}))
    for name, grid in _CIFAR_PAPER_GRID.items())
_CIFAR_TRAIN = TrainSpec(n_train=50000, epochs=200, lr=0.025, batch_size=paper_units.PAPER_BATCH_SIZE,
                         optimizer="sgd", weight_decay=5e-4, lr_milestones=(0.75, 0.875), lr_gamma=0.1,
                         augment="crop_flip")
_CIFAR_THEOREM_SIGMAS = (0.003, 0.01, 0.03, 0.1)

CIFAR10 = Preset(
    name="cifar10",
    description="CIFAR-10 (--data-dir), ResNet-18, the paper's schedule and 30-strength grids; "
                "autoencoder tangents, denoiser or DDPM score",
    data=Cifar10Spec(),
    model=ModelSpec("ResNet18", {}),
    train=_CIFAR_TRAIN,
    eval=EvalSpec(n_points=256, n_accuracy=5000, sigma=_IMAGE_SIGMA, sigmas=_IMAGE_SIGMAS, n_samples=16,
                  theorem_sigmas=_CIFAR_THEOREM_SIGMAS, theorem_points=16, theorem_samples=32),
    sweep=_CIFAR_SWEEP,
    n_seeds=1,
)

# Quick: the whole pipeline on CPU in minutes on a few hundred images: ResNet-18 at a
# quarter width (16 channels), 400 training images x 2 epochs (the paper's optimiser,
# weight decay, step schedule and crop + flip), two strengths per regulariser (grid
# indices 10 and 20), PGD with 3 steps, tiny fits on 400 images, 32 metric images,
# 200 accuracy images (README: measured time).
_CIFAR_QUICK_INDICES = (10, 20)
CIFAR10_QUICK = dataclasses.replace(
    CIFAR10,
    data=Cifar10Spec(n_fit=400, latent_dim=16, ae_epochs=4, ae_width=16, denoiser_epochs=2,
                     denoiser_width=8, n_directions=4),
    model=ModelSpec("ResNet18", {"width": 16}),
    train=dataclasses.replace(_CIFAR_TRAIN, n_train=400, epochs=2, batch_size=64),
    eval=EvalSpec(n_points=32, n_accuracy=200, sigma=_IMAGE_SIGMA, sigmas=_IMAGE_SIGMAS, n_samples=4,
                  theorem_sigmas=_CIFAR_THEOREM_SIGMAS, theorem_points=4, theorem_samples=8),
    sweep=tuple((name, tuple(values[i] for i in _CIFAR_QUICK_INDICES),
                 {**options, "steps": 3} if name == "pgd_l2" else options)
                for name, values, options in CIFAR10.sweep),
    n_seeds=1,
)


register_preset(CIFAR10, CIFAR10_QUICK)
