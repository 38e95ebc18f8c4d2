"""Robust training: objectives, per-example PGD-L2, randomized smoothing, the trainer.

- :func:`pgd_l2`, :func:`pgd_linf` — per-example L2 / L∞ PGD (eval mode, frozen parameters, any input shape);
- objectives (:mod:`~manifold_lab.training.objectives`): :class:`CrossEntropy`,
  :class:`GradientNorm`, :class:`Smoothness`, :class:`NoiseAugmentation`,
  :class:`PGDAdversarial`, and :func:`make_objective` (name + one strength);
- :class:`SmoothedClassifier` — Cohen et al.'s prediction and certified L2 radius;
- :func:`train` — seeded, resumable mini-batch training; :func:`save_checkpoint`,
  :func:`load_checkpoint`; :func:`load_user_checkpoint` — users' RobustBench / MadryLab /
  plain checkpoints into a named architecture (``weights_only=True``).

The paper's released-code defects (docs/theory.md) are avoided by construction: every
L2 ball is per example, attacks run in eval mode with frozen parameters, and the
gradient penalty is a mean of per-example squared norms.
"""

from manifold_lab.training.attacks import pgd_l2, pgd_linf
from manifold_lab.training.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
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
    objective_class,
    objective_from_config,
    register_objective,
    regularizers,
    unregister_objective,
)
from manifold_lab.training.smoothing import ABSTAIN, Certificate, SmoothedClassifier
from manifold_lab.training.trainer import NonFiniteLossError, TrainResult, epoch_seed, train
from manifold_lab.training.user_checkpoint import UserCheckpoint, load_user_checkpoint

__all__ = [
    "pgd_l2",
    "pgd_linf",
    "Objective", "CrossEntropy", "GradientNorm", "Smoothness", "NoiseAugmentation", "PGDAdversarial",
    "make_objective", "objective_from_config", "REGULARIZERS", "STRENGTH_PARAMETER",
    "SMOOTHNESS_NOISE_STD", "register_objective", "unregister_objective", "objective_class",
    "regularizers",
    "SmoothedClassifier", "Certificate", "ABSTAIN",
    "train", "TrainResult", "NonFiniteLossError", "epoch_seed",
    "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError",
    "load_user_checkpoint", "UserCheckpoint",
]
