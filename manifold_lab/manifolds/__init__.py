"""Manifolds with exact geometry: sampling measures, tangent bases, projectors.

Public classes (DESIGN.md, "Public API"):

- ``Manifold``: the abstract interface (``ambient_dim``, ``intrinsic_dim``,
  ``sample``, ``tangent_basis``, ``project_tangent``, ``project_normal``,
  ``nearest_point``/``distance`` where a closed form exists);
- ``AffineSubspace``, ``Sphere``: closed-form manifolds placed in ``R^d`` by a
  seeded random isometry and offset (``Embedding``).
"""

from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds.affine import AffineSubspace
from manifold_lab.manifolds.base import Manifold
from manifold_lab.manifolds.sphere import Sphere

__all__ = ["Manifold", "Embedding", "AffineSubspace", "Sphere"]
