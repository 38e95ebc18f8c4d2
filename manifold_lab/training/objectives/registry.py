"""Objectives by name: one strength knob per regulariser (for sweeps), and rebuild from config."""

from __future__ import annotations

from manifold_lab.training.objectives.base import Objective, check_weight
from manifold_lab.training.objectives.cross_entropy import CrossEntropy
from manifold_lab.training.objectives.gradient_norm import GradientNorm
from manifold_lab.training.objectives.noise_augmentation import NoiseAugmentation
from manifold_lab.training.objectives.pgd_adversarial import PGDAdversarial
from manifold_lab.training.objectives.smoothness import Smoothness

__all__ = ["REGULARIZERS", "STRENGTH_PARAMETER", "SMOOTHNESS_NOISE_STD", "make_objective",
           "objective_from_config"]

#: Noise scale of ``make_objective("smoothness", weight)``: the scale of the
#: metrics' default on/off-manifold noise (THEORY.md prototype, sigma = 0.1), so
#: the penalty acts at the scale that is measured. Its small-noise limit is
#: ``weight * 0.01 * ||J_z||_F^2``: a weight grid 1e-2 .. 1e2 spans effective
#: Jacobian penalties 1e-4 .. 1, from negligible to flattening the model.
SMOOTHNESS_NOISE_STD = 0.1

#: What the single ``strength`` of :func:`make_objective` sets, per regulariser.
STRENGTH_PARAMETER = {
    "none": None,
    "gradient_norm": "weight",
    "smoothness": "weight",
    "noise_augmentation": "noise_std",
    "pgd_l2": "eps",
}
REGULARIZERS = tuple(STRENGTH_PARAMETER)

_BUILDERS = {
    "none": lambda s, **kw: CrossEntropy(**kw),
    "gradient_norm": lambda s, **kw: GradientNorm(weight=s, **kw),
    "smoothness": lambda s, **kw: Smoothness(weight=s, **{"noise_std": SMOOTHNESS_NOISE_STD, **kw}),
    "noise_augmentation": lambda s, **kw: NoiseAugmentation(noise_std=s, **kw),
    "pgd_l2": lambda s, **kw: PGDAdversarial(eps=s, **kw),
}
_CLASSES = {cls.name: cls for cls in (CrossEntropy, GradientNorm, Smoothness, NoiseAugmentation,
                                      PGDAdversarial)}


def make_objective(name: str, strength: float = 0.0, **options) -> Objective:
    """The objective of regulariser ``name`` at strength ``s`` (a sweep's single knob).

    - ``"none"``: ``CrossEntropy()`` (``s`` ignored);
    - ``"gradient_norm"``: ``GradientNorm(weight=s, of="loss")``;
    - ``"smoothness"``: ``Smoothness(weight=s, noise_std=SMOOTHNESS_NOISE_STD)`` (σ = 0.1);
    - ``"noise_augmentation"``: ``NoiseAugmentation(noise_std=s)``;
    - ``"pgd_l2"``: ``PGDAdversarial(eps=s, steps=10)``.

    Parameters
    ----------
    name : str
        One of :data:`REGULARIZERS`.
    strength : float
        Finite, >= 0.
    **options
        Other constructor arguments, e.g. ``noise_std=`` for smoothness,
        ``steps=``/``bounds=`` for pgd_l2, ``of="logit"`` for gradient_norm.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown regulariser {name!r}; choose one of {list(REGULARIZERS)}")
    strength = check_weight("strength", strength)
    try:
        return _BUILDERS[name](strength, **options)
    except TypeError as exc:
        raise ValueError(f"bad options {options} for regulariser {name!r}: {exc}") from None


def objective_from_config(config: dict) -> Objective:
    """Rebuild an objective from its ``config()`` dict."""
    if not isinstance(config, dict) or config.get("name") not in _CLASSES:
        raise ValueError(f"config must be a dict with 'name' in {sorted(_CLASSES)}, got {config!r}")
    args = {k: v for k, v in config.items() if k != "name"}
    try:
        return _CLASSES[config["name"]](**args)
    except TypeError as exc:
        raise ValueError(f"config {config} does not fit {config['name']}: {exc}") from None
