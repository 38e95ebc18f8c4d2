"""The Fashion-MNIST presets ``fmnist`` (Figure 3) and ``fmnist_distractor`` (Figure 5)."""

from __future__ import annotations

import dataclasses

from manifold_lab.experiments.kinds import FashionMnistDistractorSpec, FashionMnistSpec
from manifold_lab.experiments.presets.images import (
    IMAGE_MODEL, IMAGE_SIGMA, IMAGE_SIGMAS, IMAGE_THEOREM_SIGMAS, PGD_OPTIONS,
)
from manifold_lab.experiments.presets.registry import register_preset
from manifold_lab.experiments.specs import EvalSpec, Preset, TrainSpec, log_strengths

__all__ = ["FMNIST", "FMNIST_QUICK", "FMNIST_DISTRACTOR", "FMNIST_DISTRACTOR_QUICK"]

# fmnist (the paper's Figure 3 on Fashion-MNIST): images in [0, 1], D = 784, RMS image
# norm 12.7 (the paper's CIFAR steps scale to eps = 0.62 ... 3.83, documented 1.14).
# Def. 1 at sigma = 0.1 per pixel (noise norm 2.8, about a fifth of an image); the
# score at sigma = 0.1 (FashionMnistSpec.score_sigma). Strength grids reach from no
# visible effect to chance accuracy: noise std up to 3 (noise norm 6.6 x the image),
# PGD radius up to 10 (0.8 image norms). SmallCNN with softplus (C^2; gradient-norm
# training differentiates the input gradient), Adam. Sized for a 2-core laptop
# (66 models in about an hour, README): 6,000 training images x 5 epochs (470 Adam
# steps) per model; 256 held-out points x 8 draws per sigma. On a GPU, raise n_train
# and epochs (a new preset or dataclasses.replace; the fingerprint keeps runs apart).
_IMAGE_SWEEP = (
    ("gradient_norm", log_strengths(1e-4, 10.0, 8)),
    ("smoothness", log_strengths(1e-2, 100.0, 8)),
    ("noise_augmentation", log_strengths(1e-2, 3.0, 8)),
    ("pgd_l2", log_strengths(3e-2, 10.0, 8), PGD_OPTIONS),
)

FMNIST = Preset(
    name="fmnist",
    description="Fashion-MNIST, SmallCNN (softplus); autoencoder tangents, denoiser score; "
                "4 regularisers x 8 strengths",
    data=FashionMnistSpec(n_fit=10000, latent_dim=16, ae_epochs=20, ae_width=32,
                          denoiser_epochs=8, denoiser_width=16, n_directions=8),
    model=IMAGE_MODEL,
    train=TrainSpec(n_train=6000, epochs=5, lr=2e-3, batch_size=64),
    eval=EvalSpec(n_points=256, n_accuracy=2000, sigma=IMAGE_SIGMA, sigmas=IMAGE_SIGMAS, n_samples=8,
                  theorem_sigmas=IMAGE_THEOREM_SIGMAS, theorem_points=16, theorem_samples=32),
    sweep=_IMAGE_SWEEP,
    n_seeds=2,
)

# Quick: 3 of the 8 strengths (indices 1, 4, 7: the excessive end included), one
# seed, 1,500 training images x 4 epochs (120 Adam steps), fits on 2,000 images
# (autoencoder width 16, 8 epochs; denoiser width 8, 2 epochs), 48 held-out points:
# within 5 minutes on 2 loaded cores including both fits (README).
FMNIST_QUICK = dataclasses.replace(
    FMNIST,
    data=FashionMnistSpec(n_fit=2000, latent_dim=16, ae_epochs=8, ae_width=16,
                          denoiser_epochs=2, denoiser_width=8, n_directions=4),
    train=TrainSpec(n_train=1500, epochs=4, lr=2e-3, batch_size=50),
    eval=EvalSpec(n_points=48, n_accuracy=1000, sigma=IMAGE_SIGMA, sigmas=IMAGE_SIGMAS, n_samples=4,
                  theorem_sigmas=IMAGE_THEOREM_SIGMAS, theorem_points=4, theorem_samples=8),
    sweep=tuple((name, values[1::3], options) for name, values, options in FMNIST.sweep),
    n_seeds=1,
)

# fmnist_distractor (the paper's Figure 5): 56x28 images, a Fashion-MNIST item and a
# label-independent Fashion-MNIST distractor (MNIST digits with --distractor-dir) at
# random top/bottom. A standard model and robust ones (PGD-L2, gradient norm over a few
# strengths), one seed (9 models at twice fmnist's image size); half sensitivities at
# sigma = 0.3 per pixel (noise norm 8.4 on a half whose RMS norm is 12.7), curve over
# the paper's range 1e-2 ... 1e1.
_DISTRACTOR_SWEEP = (
    ("pgd_l2", log_strengths(0.1, 10.0, 4), PGD_OPTIONS),
    ("gradient_norm", log_strengths(1e-3, 1.0, 4)),
)
FMNIST_DISTRACTOR = Preset(
    name="fmnist_distractor",
    description="Fashion-MNIST signal + label-independent distractor half (56x28), SmallCNN; "
                "signal vs distractor sensitivity (Figure 5)",
    data=FashionMnistDistractorSpec(**{**FMNIST.data.__dict__}),
    model=IMAGE_MODEL,
    train=FMNIST.train,
    eval=FMNIST.eval,
    sweep=_DISTRACTOR_SWEEP,
    n_seeds=1,
)
# Quick: the random top/bottom placement makes the task harder than fmnist (1,500
# images x 4 epochs left every model at chance): 3,000 images x 4 epochs (240 Adam steps,
# lr 3e-3), PGD at two radii and one gradient-norm weight, one seed.
FMNIST_DISTRACTOR_QUICK = dataclasses.replace(
    FMNIST_DISTRACTOR,
    data=FashionMnistDistractorSpec(**{**FMNIST_QUICK.data.__dict__}),
    train=TrainSpec(n_train=3000, epochs=4, lr=3e-3, batch_size=50),
    eval=FMNIST_QUICK.eval,
    sweep=(("pgd_l2", FMNIST_DISTRACTOR.strengths("pgd_l2")[1::2], PGD_OPTIONS),
           ("gradient_norm", FMNIST_DISTRACTOR.strengths("gradient_norm")[2:3])),
    n_seeds=1,
)

register_preset(FMNIST, FMNIST_QUICK)
register_preset(FMNIST_DISTRACTOR, FMNIST_DISTRACTOR_QUICK)
