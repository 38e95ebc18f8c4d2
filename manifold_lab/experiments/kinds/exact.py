"""The reference of an exact kind, filled from a ``data.Distribution``."""

from __future__ import annotations

import torch

from manifold_lab.experiments.reference import Reference
from manifold_lab.models import BayesOptimalClassifier

__all__ = ["ExactReference"]

#: Exact reference quantities are computed in float64 (then cast by the caller).
_EXACT_DTYPE = torch.float64


class ExactReference(Reference):
    """Exact ground truth of a distribution whose density is known.

    Eval points are the noise-free points on ``dist.manifold`` (float64); tangent
    bases are the manifold's exact ones; the reference gradient is the exact
    Bayes posterior gradient ``grad_x log p(y|x)`` (class-conditional score minus
    marginal score), the second one the class-conditional score
    ``grad_x log p(x|y)``; the regime reference model is
    ``BayesOptimalClassifier(dist)``.
    """

    def __init__(self, dist) -> None:
        self.dist = dist

    def training_data(self, n, *, generator):
        return self.dist.sample(n, generator=generator)

    def eval_points(self, n, *, generator):
        return self.dist.sample(n, generator=generator, dtype=_EXACT_DTYPE, on_manifold=True)

    def accuracy_points(self, n, *, generator):
        return self.dist.sample(n, generator=generator, dtype=_EXACT_DTYPE)

    def tangent_basis(self, x):
        return self.dist.manifold.tangent_basis(x)

    def reference_gradients(self, x, y):
        cond = self.dist.class_score(x)[torch.arange(x.shape[0]), y]
        return self.dist.posterior_grad(x, y), cond

    def eval_extras(self, x, y, *, device="cpu", dtype=torch.float32):
        # The exact Bayes gradient grad log p(y|x) is the reference of bayes_grad_cosine
        # (the same as score_cosine's here), so the column means one thing on every kind.
        return {"bayes_grad": self.dist.posterior_grad(x, y).to(device, dtype)}

    def reference_model(self):
        return BayesOptimalClassifier(self.dist)
