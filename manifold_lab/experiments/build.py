"""From preset specs to objects: the distribution, training data, a fresh model, seeds.

Seeds are derived by hashing (``derive_seed``), never by Python's ``hash``
(randomised per process), so every worker process of a sweep rebuilds exactly
the same distribution, held-out points and training sets.
"""

from __future__ import annotations

import hashlib

import torch

from manifold_lab.experiments.presets import DataSpec, ModelSpec, TrainSpec

__all__ = ["derive_seed", "make_generator", "build_distribution", "build_model", "training_data"]

_SEED_BITS = 63  # torch.Generator.manual_seed accepts any non-negative 64-bit int
_INIT_SEED_MOD = 2 ** 31  # model init seeds stay below 2**31 (any seed API accepts them)


def derive_seed(*parts: object) -> int:
    """A stable non-negative seed from ``parts`` (SHA-256 of their ``repr``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def build_distribution(spec: DataSpec, seed: int):
    """The preset's data distribution, its random embedding fixed by ``seed``.

    ``vmf_sphere``: ``VonMisesFisherMixture(Sphere(k, d, radius=1, seed), C,
    concentration, noise_std, seed)``; ``signal_distractor``:
    ``GaussianSignalDistractor(k_signal, k_distractor, d, n_classes=C,
    noise_std, seed)``.
    """
    from manifold_lab import data, manifolds

    if spec.kind == "vmf_sphere":
        sphere = manifolds.Sphere(spec.intrinsic_dim, spec.ambient_dim, radius=1.0,
                                  seed=derive_seed(seed, "sphere"))
        return data.VonMisesFisherMixture(
            sphere, spec.n_classes, spec.concentration, spec.noise_std,
            seed=derive_seed(seed, "vmf"),
        )
    return data.GaussianSignalDistractor(
        spec.intrinsic_dim, spec.distractor_dim, spec.ambient_dim,
        n_classes=spec.n_classes, noise_std=spec.noise_std, seed=derive_seed(seed, "gsd"),
    )


def build_model(spec: ModelSpec, data_spec: DataSpec, *, seed: int) -> torch.nn.Module:
    """A freshly initialised ``MLP`` for model seed ``seed`` (the same initial
    weights for every regulariser trained with that seed)."""
    from manifold_lab.models import MLP

    return MLP(data_spec.ambient_dim, data_spec.n_classes, hidden=tuple(spec.hidden),
               activation=spec.activation, seed=derive_seed(seed, "init") % _INIT_SEED_MOD)


def training_data(dist, spec: TrainSpec, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``spec.n_train`` noisy training samples of model seed ``seed`` (float32, CPU)."""
    return dist.sample(spec.n_train, generator=make_generator(derive_seed(seed, "train-data")))
