"""Training objectives: ``objective(model, x, y, *, generator=None) -> (loss, logs)``.

- :class:`CrossEntropy` — the baseline;
- :class:`GradientNorm` — per-example squared input-gradient norm (double backprop);
- :class:`Smoothness` — squared logit change under Gaussian input noise;
- :class:`NoiseAugmentation` — cross-entropy on Gaussian-noised inputs;
- :class:`PGDAdversarial` — cross-entropy on per-example L2 PGD examples;
- :func:`make_objective` — regulariser name + one strength -> objective, from the
  registry each class joins with ``@register_objective`` in its own module.
"""

from manifold_lab.training.objectives.base import Objective
from manifold_lab.training.objectives.cross_entropy import CrossEntropy
from manifold_lab.training.objectives.gradient_norm import GradientNorm
from manifold_lab.training.objectives.noise_augmentation import NoiseAugmentation
from manifold_lab.training.objectives.pgd_adversarial import PGDAdversarial
from manifold_lab.training.objectives.registry import (
    REGULARIZERS,
    STRENGTH_PARAMETER,
    make_objective,
    objective_class,
    objective_from_config,
    register_objective,
    regularizers,
    unregister_objective,
)
from manifold_lab.training.objectives.smoothness import SMOOTHNESS_NOISE_STD, Smoothness

__all__ = ["Objective", "CrossEntropy", "GradientNorm", "Smoothness", "NoiseAugmentation",
           "PGDAdversarial", "make_objective", "objective_from_config", "REGULARIZERS",
           "STRENGTH_PARAMETER", "SMOOTHNESS_NOISE_STD", "register_objective",
           "unregister_objective", "objective_class", "regularizers"]
