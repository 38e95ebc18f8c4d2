"""The exact Bayes-optimal classifier of a known distribution, as an ``nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from manifold_lab.data.base import Distribution

__all__ = ["BayesOptimalClassifier"]


class BayesOptimalClassifier(nn.Module):
    """``forward(x) = log p(y = c | x)``, exact, for a :class:`~manifold_lab.data.Distribution`.

    Parameters
    ----------
    dist : manifold_lab.data.Distribution
        The data distribution; its closed-form posterior is the model.

    Notes
    -----
    The module has no parameters; it follows the input's dtype and device (the
    distribution casts its constants), is differentiable by autograd, and its
    input gradient of output ``c`` is ``dist.posterior_grad(x, c)``. Used in place
    of a trained network it gives the Bayes risk, the reference on-manifold
    sensitivity and the reference gradients of the experiments.
    """

    def __init__(self, dist: Distribution) -> None:
        super().__init__()
        if not isinstance(dist, Distribution):
            raise ValueError(f"dist must be a manifold_lab.data.Distribution, got {type(dist).__name__}")
        self.dist = dist

    @property
    def n_classes(self) -> int:
        return self.dist.n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-posteriors.

        Parameters
        ----------
        x : Tensor, shape [n, d] (or [n, *shape] with ``prod(shape) == d``, e.g. images)

        Returns
        -------
        Tensor, shape [n, C]
        """
        if x.ndim > 2 and x[0].numel() == self.dist.ambient_dim:
            x = x.flatten(1)
        return self.dist.log_posterior(x)

    def extra_repr(self) -> str:
        return repr(self.dist)
