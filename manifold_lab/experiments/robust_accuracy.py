"""Accuracy under a PGD attack (``run evaluate --attack``): the number RobustBench users read first.

``robust_accuracy`` attacks each image once with ``training.attacks`` (``pgd_linf`` or
``pgd_l2``: untargeted, cross-entropy, per-example balls, pixels kept in [0, 1]) and
counts the images still classified correctly. The attack is plain PGD:

- start: the clean image (no random start, so the number is reproducible and equal
  to torchattacks' ``PGD``/``PGDL2`` with ``random_start=False``: see
  ``tests/test_attacks_torchattacks.py``);
- ``steps`` iterations (default 10) of ``δ ← Π(δ + α·step(∇ℓ))`` with ``step`` the
  gradient's sign (L∞) or its unit L2 direction (L2), ``Π`` the projection onto the
  ε-ball, then clamping ``x + δ`` into [0, 1];
- step size ``α = 2.5 ε / steps`` (Madry et al.'s rule; at ε = 8/255 and 10 steps
  it is torchattacks' default 2/255).

This is **PGD, not AutoAttack**: PGD-10 is an upper bound on robust accuracy and
typically sits a few points above RobustBench's AutoAttack numbers for
adversarially trained models (more for models that mask gradients). Default
budgets (``DEFAULT_EPS``) are RobustBench's: CIFAR-10 L∞ 8/255, L2 0.5; ImageNet
L∞ 4/255, L2 3.0 (MadryLab's L2 ImageNet models' ε).
"""

from __future__ import annotations

import torch

# AttackSpec and the default budgets are plain data, torch-free for `run evaluate`'s argument checks.
from manifold_lab._evaluate_index import ATTACK_NAMES, DEFAULT_EPS, DEFAULT_STEPS, AttackSpec
from manifold_lab.training.attacks import pgd_l2, pgd_linf

__all__ = ["ATTACKS", "DEFAULT_EPS", "DEFAULT_STEPS", "AttackSpec", "robust_accuracy"]

#: Attack names -> functions (``training.attacks``).
ATTACKS = {"pgd_linf": pgd_linf, "pgd_l2": pgd_l2}
assert tuple(ATTACKS) == ATTACK_NAMES
#: Images attacked at once (memory: a batch of inputs and their gradients).
BATCH = 64
#: Pixel range the adversarial images are kept in.
PIXEL_BOUNDS = (0.0, 1.0)


def robust_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attack: AttackSpec) -> float:
    """Fraction of ``x`` still classified as ``y`` after the attack (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        ``[n, c, h, w]`` pixels in [0, 1] -> logits ``[n, C]``.
    x : Tensor, shape [n, c, h, w]
        Clean images in [0, 1] (on the model's device).
    y : Tensor, shape [n]
    attack : AttackSpec

    Returns
    -------
    float
        ``mean_i [argmax model(x_adv_i) = y_i]``.
    """
    fn = ATTACKS[attack.name]
    correct = 0
    for i in range(0, x.shape[0], BATCH):
        xb, yb = x[i:i + BATCH], y[i:i + BATCH]
        adv = fn(model, xb, yb, attack.eps, steps=attack.steps, bounds=PIXEL_BOUNDS, random_start=False)
        with torch.no_grad():
            correct += int((model(adv).argmax(-1) == yb).sum())
    return correct / max(x.shape[0], 1)
