"""Experiment presets, one module per preset family, each registered by name.

A preset fixes everything a run depends on: the data kind (one spec dataclass
per kind, ``experiments.kinds``), the model, training, evaluation, the sweep grid
and the regime thresholds (the dataclasses live in ``experiments.specs``).
``get_preset`` returns the full or the ``quick`` variant; ``--seed`` shifts every
seed of a run (see ``sweep.plan_jobs``). Strength grids are log-spaced from
negligible to excessive; what "strength" means per regulariser is declared by
its objective class (``strength_meaning``).

- ``toy``: ``toy_sphere``, ``toy_subspace`` (exact distributions, MLPs);
- ``images``: what the image presets share (CNN, noise scales, PGD options);
- ``mnist``: ``mnist`` (MNIST digits from ``--data-dir``);
- ``fmnist``: ``fmnist``, ``fmnist_distractor`` (Fashion-MNIST);
- ``cifar10``: ``cifar10`` (the paper's CIFAR-10 protocol).

A new preset is a new module here calling :func:`register_preset`, plus its import
line below (docs/extending.md).
"""

from manifold_lab.experiments.specs import (
    DataSpec, EvalSpec, ModelSpec, Preset, TrainSpec, log_strengths, preset_to_dict, strength_meaning,
)
from manifold_lab.experiments.presets.registry import PRESETS, get_preset, list_presets, register_preset
from manifold_lab.experiments.presets.toy import (  # noqa: E402  (registration order = --list order)
    TOY_SPHERE, TOY_SPHERE_QUICK, TOY_SUBSPACE, TOY_SUBSPACE_QUICK,
)
from manifold_lab.experiments.presets.mnist import MNIST, MNIST_QUICK
from manifold_lab.experiments.presets.fmnist import (
    FMNIST, FMNIST_DISTRACTOR, FMNIST_DISTRACTOR_QUICK, FMNIST_QUICK,
)
from manifold_lab.experiments.presets.cifar10 import CIFAR10, CIFAR10_QUICK

__all__ = [
    "DataSpec", "ModelSpec", "TrainSpec", "EvalSpec", "Preset", "PRESETS", "get_preset", "list_presets",
    "register_preset", "log_strengths", "preset_to_dict", "strength_meaning",
    "TOY_SPHERE", "TOY_SPHERE_QUICK", "TOY_SUBSPACE", "TOY_SUBSPACE_QUICK", "MNIST", "MNIST_QUICK",
    "FMNIST", "FMNIST_QUICK", "FMNIST_DISTRACTOR", "FMNIST_DISTRACTOR_QUICK", "CIFAR10", "CIFAR10_QUICK",
]
