"""The metric core: on/off-manifold robustness (Def. 1), gradient alignment
(Def. 2) and the Theorem 3.1 check (docs/theory.md).

Takes tensors and callables only — never a dataset or manifold object — so it
serves synthetic and image models alike. Imports only torch (plus pytorch-msssim for SSIM) and
``manifold_lab._validation``.

Public API
----------
tangent_fraction(grad, basis), alignment_ratio(grad, basis), pooled_alignment(grad, basis),
score_cosine(grad, score)
input_gradient(model, x, y=None, *, target="log_softmax"), scalar_fn(model, y=None, *, target=...)
manifold_robustness(f, x, basis, sigmas, *, n_samples=64, generator=None, chunk_size=None)
directional_robustness(model_or_fn, x, basis, eps, *, n_directions=8, distance="softmax_l1", ...)
theorem_3_1_table(f, x, basis, sigmas, *, n_samples=512, generator=None)
subspace_overlap(a, b), subspace_distance(a, b)            (learned vs exact tangent spaces)
image_cosine(a, b), ssim_similarity(a, b), lpips_similarity(a, b)  (perceptual, on images)
"""

from manifold_lab.metrics._checks import check_basis, orthonormality_tolerance
from manifold_lab.metrics._sweep import DEFAULT_CHUNK_ELEMENTS, RobustnessResult
from manifold_lab.metrics.alignment import (
    ZeroGradientWarning, alignment_ratio, pooled_alignment, score_cosine, tangent_fraction,
)
from manifold_lab.metrics.directional import DirectionalRobustness, directional_robustness
from manifold_lab.metrics.gradients import ScalarFn, input_gradient, scalar_fn, scalar_gradient
from manifold_lab.metrics.perceptual import image_cosine, lpips_similarity, normalize_images, ssim_similarity
from manifold_lab.metrics.robustness import ManifoldRobustness, manifold_robustness
from manifold_lab.metrics.subspaces import subspace_distance, subspace_overlap
from manifold_lab.metrics.theorem31 import Theorem31Table, theorem_3_1_table

__all__ = [
    "ZeroGradientWarning",
    "tangent_fraction",
    "alignment_ratio",
    "pooled_alignment",
    "score_cosine",
    "input_gradient",
    "scalar_fn",
    "scalar_gradient",
    "ScalarFn",
    "manifold_robustness",
    "ManifoldRobustness",
    "directional_robustness",
    "DirectionalRobustness",
    "RobustnessResult",
    "theorem_3_1_table",
    "Theorem31Table",
    "check_basis",
    "orthonormality_tolerance",
    "DEFAULT_CHUNK_ELEMENTS",
    "subspace_overlap",
    "subspace_distance",
    "image_cosine",
    "ssim_similarity",
    "lpips_similarity",
    "normalize_images",
]
