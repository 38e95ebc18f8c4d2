"""The synthetic presets ``toy_sphere`` and ``toy_subspace``: exact distributions, MLPs.

Their numbers are the project's regression anchor: any change here changes
every published synthetic result (README), so settings are only added, never
retuned.
"""

from __future__ import annotations

import dataclasses

from manifold_lab.experiments.kinds import SignalDistractorSpec, VmfSphereSpec
from manifold_lab.experiments.presets.registry import register_preset
from manifold_lab.experiments.specs import EvalSpec, ModelSpec, Preset, TrainSpec, log_strengths

__all__ = ["TOY_SPHERE", "TOY_SPHERE_QUICK", "TOY_SUBSPACE", "TOY_SUBSPACE_QUICK"]

# toy_sphere follows docs/theory.md's prototype: a 2-sphere in R^512 (a large ambient
# dimension so off-manifold directions dominate), 4 classes, concentration 4,
# noise 0.01, softplus MLP, Adam. To fit 67 models in 5 minutes on 2 CPU cores the
# MLP is 2x128 (not 2x256: same accuracy, half the cost) and every model trains
# 800 steps (1,000 points x 80 epochs, batch 100, lr 3e-3): long enough that the
# unregularised model fits the samples' off-manifold noise (training loss below
# the Bayes NLL), as a network trained to convergence does; shorter training
# leaves it already off-manifold robust (README, notebooks/toy_sphere_regimes).
# PGD training uses 3 attack steps instead of 10 for the same budget.
_SPHERE_DATA = VmfSphereSpec(
    ambient_dim=512, intrinsic_dim=2, n_classes=4, noise_std=0.01, concentration=4.0,
)
_SIGMA = 0.1  # docs/theory.md prototype's scale (tangent noise norm 0.14 on a unit sphere)
_SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0)
_THEOREM_SIGMAS = (0.003, 0.01, 0.03, 0.1, 0.3)

# PGD training: 3 attack steps (step size 2.5 eps / 3, the objective's default).
_PGD_OPTIONS = {"steps": 3}

_SPHERE_SWEEP = (
    ("gradient_norm", log_strengths(1e-4, 10.0, 8)),
    ("smoothness", log_strengths(1e-2, 100.0, 8)),
    ("noise_augmentation", log_strengths(1e-2, 10.0, 8)),
    ("pgd_l2", log_strengths(1e-2, 3.0, 8), _PGD_OPTIONS),
)

_FULL_EVAL = EvalSpec(
    n_points=256, n_accuracy=2000, sigma=_SIGMA, sigmas=_SIGMAS, n_samples=32,
    theorem_sigmas=_THEOREM_SIGMAS, theorem_points=64, theorem_samples=128,
)
_QUICK_EVAL = EvalSpec(
    n_points=128, n_accuracy=1000, sigma=_SIGMA, sigmas=_SIGMAS, n_samples=16,
    theorem_sigmas=_THEOREM_SIGMAS, theorem_points=32, theorem_samples=64,
)

_THEOREM_MODELS = (("none", 0), ("gradient_norm", 3), ("noise_augmentation", 4))

TOY_SPHERE = Preset(
    name="toy_sphere",
    description="vMF mixture on a 2-sphere in R^512 (4 classes); 4 regularisers x 8 strengths",
    data=_SPHERE_DATA,
    model=ModelSpec("MLP", {"hidden": (128, 128), "activation": "softplus"}),
    train=TrainSpec(n_train=1000, epochs=80, lr=3e-3, batch_size=100),
    eval=_FULL_EVAL,
    sweep=_SPHERE_SWEEP,
    n_seeds=2,
    theorem_models=_THEOREM_MODELS,
)


def _quick(preset: Preset) -> Preset:
    """Every other strength, one seed, fewer evaluation points; same training."""
    return dataclasses.replace(
        preset,
        eval=_QUICK_EVAL,
        sweep=tuple((name, values[::2], options) for name, values, options in preset.sweep),
        n_seeds=1,
        theorem_models=(("none", 0),),
    )


TOY_SPHERE_QUICK = _quick(TOY_SPHERE)

_SUBSPACE_DATA = SignalDistractorSpec(
    ambient_dim=256, intrinsic_dim=4, distractor_dim=4, n_classes=4, noise_std=0.1,
)
# Signal std 1 and noise 0.1 in R^256 (noise norm ~1.6, ten times the sphere's):
# the noise and attack grids reach correspondingly further.
_SUBSPACE_SWEEP = (
    ("gradient_norm", log_strengths(1e-3, 100.0, 8)),
    ("smoothness", log_strengths(1e-2, 100.0, 8)),
    ("noise_augmentation", log_strengths(3e-2, 30.0, 8)),
    ("pgd_l2", log_strengths(3e-2, 10.0, 8), _PGD_OPTIONS),
)

TOY_SUBSPACE = Preset(
    name="toy_subspace",
    description="Gaussian signal + distractor in R^256 (4 classes); 4 regularisers x 8 strengths",
    data=_SUBSPACE_DATA,
    model=TOY_SPHERE.model,
    train=TOY_SPHERE.train,
    eval=_FULL_EVAL,
    sweep=_SUBSPACE_SWEEP,
    n_seeds=2,
    theorem_models=_THEOREM_MODELS,
)

TOY_SUBSPACE_QUICK = _quick(TOY_SUBSPACE)

register_preset(TOY_SPHERE, TOY_SPHERE_QUICK)
register_preset(TOY_SUBSPACE, TOY_SUBSPACE_QUICK)
