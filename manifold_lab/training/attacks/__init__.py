"""Adversarial attacks (one per module, torchattacks style)."""

from manifold_lab.training.attacks.pgd import DEFAULT_STEP_FACTOR, pgd_l2

__all__ = ["pgd_l2", "DEFAULT_STEP_FACTOR"]
