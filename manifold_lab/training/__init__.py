"""Robust training: per-example PGD-L2, objectives, smoothed classifier, trainer.

- :func:`pgd_l2` — per-example L2 projected gradient attack.
- Objectives (:mod:`.objectives`): :class:`CrossEntropy`, :class:`GradientNorm`,
  :class:`Smoothness`, :class:`NoiseAugmentation`, :class:`PGDAdversarial`,
  and :func:`make_objective` ``(name, strength)`` for sweeps.
- :func:`train` — seeded, resumable training loop; :func:`save_checkpoint` /
  :func:`load_checkpoint`.
"""

from manifold_lab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from manifold_lab.training.objectives import (
    REGULARIZERS,
    SMOOTHNESS_NOISE_STD,
    STRENGTH_PARAMETER,
    CrossEntropy,
    GradientNorm,
    NoiseAugmentation,
    Objective,
    PGDAdversarial,
    Smoothness,
    make_objective,
    objective_from_config,
)
from manifold_lab.training.attacks import pgd_l2
from manifold_lab.training.trainer import TrainingDivergedError, TrainResult, train

__all__ = [
    "pgd_l2", "Objective", "CrossEntropy", "GradientNorm", "Smoothness", "NoiseAugmentation",
    "PGDAdversarial", "make_objective", "objective_from_config", "REGULARIZERS",
    "STRENGTH_PARAMETER", "SMOOTHNESS_NOISE_STD", "train", "TrainResult",
    "TrainingDivergedError", "save_checkpoint", "load_checkpoint", "CheckpointError",
]
