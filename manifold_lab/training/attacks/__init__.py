"""Adversarial attacks (one per module, torchattacks style): ``pgd_l2``, ``pgd_linf``."""

from manifold_lab.training.attacks.pgd import DEFAULT_STEP_FACTOR, pgd_l2
from manifold_lab.training.attacks.pgd_linf import pgd_linf

__all__ = ["pgd_l2", "pgd_linf", "DEFAULT_STEP_FACTOR"]
