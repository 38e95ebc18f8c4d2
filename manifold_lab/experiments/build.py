"""From preset specs to objects: a fresh model and a model's training data.

The data kind itself is built by its spec (``DataSpec.build``, see
``experiments.kinds``); seeds come from ``experiments.seeds``.
"""

from __future__ import annotations

import torch

from manifold_lab import models
from manifold_lab.experiments.specs import ModelSpec, TrainSpec
from manifold_lab.experiments.reference import DataSpec, Reference
from manifold_lab.experiments.seeds import INIT_SEED_MOD, derive_seed, make_generator

__all__ = ["build_model", "training_data"]


def build_model(spec: ModelSpec, data_spec: DataSpec, *, seed: int) -> torch.nn.Module:
    """A freshly initialised ``models.build_model(spec.name, ...)`` for model seed
    ``seed`` (the same initial weights for every regulariser trained with that seed).

    Constructor arguments: the data kind's ``model_inputs()`` (input size, class
    count), then ``spec.options``, then the derived initialisation seed.
    """
    config = {**data_spec.model_inputs(), **spec.options,
              "seed": derive_seed(seed, "init") % INIT_SEED_MOD}
    return models.build_model(spec.name, config)


def training_data(reference: Reference, spec: TrainSpec, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``spec.n_train`` training samples of model seed ``seed`` (float32, CPU)."""
    return reference.training_data(spec.n_train,
                                   generator=make_generator(derive_seed(seed, "train-data")))
