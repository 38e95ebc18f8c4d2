"""Data kind ``vmf_sphere``: a von Mises–Fisher mixture on a unit sphere."""

from __future__ import annotations

from dataclasses import dataclass

from manifold_lab import data, manifolds
from manifold_lab.experiments.kinds.exact import ExactReference
from manifold_lab.experiments.kinds.registry import register_kind
from manifold_lab.experiments.reference import BAYES_OPTIMAL, DataSpec
from manifold_lab.experiments.seeds import derive_seed

__all__ = ["VmfSphereSpec"]


@register_kind
@dataclass(frozen=True)
class VmfSphereSpec(DataSpec):
    """``VonMisesFisherMixture(Sphere(intrinsic_dim, ambient_dim, radius=1), n_classes,
    concentration, noise_std)``, the sphere's random placement and the class means
    fixed by the run's seed."""

    kind = "vmf_sphere"
    regime_reference = BAYES_OPTIMAL

    ambient_dim: int
    intrinsic_dim: int
    n_classes: int
    noise_std: float
    concentration: float = 4.0

    def build(self, seed, *, cache_dir=None):
        sphere = manifolds.Sphere(self.intrinsic_dim, self.ambient_dim, radius=1.0,
                                  seed=derive_seed(seed, "sphere"))
        return ExactReference(data.VonMisesFisherMixture(
            sphere, self.n_classes, self.concentration, self.noise_std,
            seed=derive_seed(seed, "vmf"),
        ))

    def model_inputs(self):
        return {"in_dim": self.ambient_dim, "n_classes": self.n_classes}
