"""manifold_lab: which models have perceptually-aligned gradients, and why.

A testbed where data live on manifolds with exact tangent spaces, exact scores
and exact Bayes-optimal classifiers, and a metric core (on/off-manifold
robustness, gradient alignment) that runs unchanged on image models.

Subpackages, lowest layer first (a layer never imports a higher one):
``manifolds`` -> ``data`` -> ``models`` -> ``training``; ``metrics`` (tensors
and callables only) -> ``experiments`` -> ``run`` (the command-line job).
"""

__version__ = "0.1.0"
