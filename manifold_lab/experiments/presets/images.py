"""What the image presets share: the classifier, the noise scales of Def. 1, PGD options.

The classifier is ``SmallCNN`` with GELU: smooth (C-infinity, as Theorem 3.1 and
gradient-norm training, which differentiates the input gradient, need) and,
unlike softplus, it trains: on 8,000 MNIST digits (1 thread, Adam 2e-3, batch 64)
softplus is near chance after one epoch and GELU above 0.9 (README, "Why GELU").
Def. 1 is measured at sigma = 0.1 per pixel (noise norm 2.8 on 28x28 images,
about a fifth of an image), with the curve over ``IMAGE_SIGMAS``.
"""

from __future__ import annotations

from manifold_lab.experiments.specs import ModelSpec

__all__ = ["IMAGE_MODEL", "IMAGE_SIGMA", "IMAGE_SIGMAS", "IMAGE_THEOREM_SIGMAS", "IMAGE_BAYES_SIGMAS",
           "PGD_OPTIONS", "grid_ends"]

IMAGE_MODEL = ModelSpec("SmallCNN", {"activation": "gelu"})
IMAGE_SIGMA = 0.1
IMAGE_SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0)
#: Noise scales of the Theorem 3.1 table on images (float64, a few points).
IMAGE_THEOREM_SIGMAS = (0.003, 0.01, 0.03, 0.1)
#: Noise levels of the learned Bayes gradient's curve (``bayes_sigmas``): the noise
#: augmentation grids' range, so a noise-augmented model can be read at its own sigma.
IMAGE_BAYES_SIGMAS = (0.1, 0.25, 0.5, 1.0, 2.0)
#: PGD-L2 training attack: 3 steps of 2.5 eps / 3 (the objective's default step).
PGD_OPTIONS = {"steps": 3}


def grid_ends(sweep: tuple) -> tuple:
    """A preset's ``sweep`` with only the weakest and the strongest strength of each grid
    (what the ``--quick`` variants of the image presets train)."""
    return tuple((name, (values[0], values[-1]), options) for name, values, options in sweep)
