"""Manifolds with exact geometry: sampling measures, tangent bases, projectors.

Public classes (DESIGN.md, "Public API"):

- ``Manifold``: the abstract interface (``ambient_dim``, ``intrinsic_dim``,
  ``sample``, ``tangent_basis``, ``project_tangent``, ``project_normal``,
  ``nearest_point``/``distance`` where a closed form exists, ``transformed``);
- ``AffineSubspace``, ``Sphere``, ``Torus``, ``SwissRoll``: closed-form manifolds
  placed in ``R^d`` by a seeded random isometry and offset (``Embedding``);
- ``ImmersedManifold``: the image of any differentiable map (an MLP, a decoder),
  tangent spaces from its forward-mode Jacobian (``tangent_basis_at(z)``);
- ``RenderedShape``: 28x28 renderings of a glyph at continuous poses (exact tangents);
- ``Product``: direct sum in mutually orthogonal subspaces (signal (+) distractor).
"""

from manifold_lab.manifolds._embedding import Embedding
from manifold_lab.manifolds.affine import AffineSubspace
from manifold_lab.manifolds.base import Manifold
from manifold_lab.manifolds.immersed import ImmersedManifold, forward_jacobian, orthonormal_span
from manifold_lab.manifolds.product import Product
from manifold_lab.manifolds.rendered_shapes import RenderedShape
from manifold_lab.manifolds.sphere import Sphere
from manifold_lab.manifolds.swiss_roll import SwissRoll
from manifold_lab.manifolds.torus import Torus

__all__ = [
    "Manifold",
    "Embedding",
    "AffineSubspace",
    "Sphere",
    "Torus",
    "SwissRoll",
    "ImmersedManifold",
    "Product",
    "RenderedShape",
    "forward_jacobian",
    "orthonormal_span",
]
