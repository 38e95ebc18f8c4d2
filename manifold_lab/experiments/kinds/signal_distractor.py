"""Data kind ``signal_distractor``: Gaussian signal plus distractor subspaces."""

from __future__ import annotations

from dataclasses import dataclass

from manifold_lab import data
from manifold_lab.experiments.kinds.exact import ExactReference
from manifold_lab.experiments.kinds.registry import register_kind
from manifold_lab.experiments.reference import BAYES_OPTIMAL, DataSpec
from manifold_lab.experiments.seeds import derive_seed

__all__ = ["SignalDistractorSpec"]


@register_kind
@dataclass(frozen=True)
class SignalDistractorSpec(DataSpec):
    """``GaussianSignalDistractor(intrinsic_dim, distractor_dim, ambient_dim,
    n_classes, noise_std)``, its random subspaces fixed by the run's seed."""

    kind = "signal_distractor"
    regime_reference = BAYES_OPTIMAL

    ambient_dim: int
    intrinsic_dim: int
    distractor_dim: int
    n_classes: int
    noise_std: float

    def build(self, seed, *, cache_dir=None):
        return ExactReference(data.GaussianSignalDistractor(
            self.intrinsic_dim, self.distractor_dim, self.ambient_dim,
            n_classes=self.n_classes, noise_std=self.noise_std, seed=derive_seed(seed, "gsd"),
        ))

    def model_inputs(self):
        return {"in_dim": self.ambient_dim, "n_classes": self.n_classes}
