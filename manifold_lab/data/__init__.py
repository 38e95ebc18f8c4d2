"""Exact labelled distributions: densities, scores and posteriors in closed form.

- :class:`Distribution` — the abstract interface (``sample``, ``class_log_prob``,
  ``log_prob``, ``log_posterior``, ``score``, ``class_score``, ``posterior_grad``).
- :class:`GaussianSignalDistractor` / :class:`LinearSignalDistractor` — Gaussian
  signal–distractor data in complementary subspaces (Theorem 3.2).
- :class:`VonMisesFisherMixture` — vMF classes on a k-sphere plus Gaussian noise.
- :class:`MaskedImageSignalDistractor` — signal and distractor pixels of an image.
- :class:`GaussianClassImages` — Gaussian classes on images sharing their mean up to
  small bumps, with low-rank class covariances (validates class-conditional scores).

``manifold_lab.data.smoothed`` gives their exact noise-smoothed scores (``smoothed_score``),
class scores (``smoothed_class_score``) and Bayes gradients (``smoothed_posterior_grad``).

``manifold_lab.data.normal_component`` measures how far from tangent the
Bayes-optimal gradient is on the curved sphere mixture (and predicts it).
"""

from manifold_lab.data.base import ClassTerms, Distribution
from manifold_lab.data.gaussian_class_images import GaussianClassImages
from manifold_lab.data.gaussian_signal_distractor import GaussianSignalDistractor, LinearSignalDistractor
from manifold_lab.data.masked_images import MaskedImageSignalDistractor, central_square_mask
from manifold_lab.data.smoothed import exact_denoiser, smoothed_class_score, smoothed_posterior_grad, smoothed_score
from manifold_lab.data.vmf_mixture import VonMisesFisherMixture

__all__ = [
    "ClassTerms",
    "Distribution",
    "GaussianClassImages",
    "GaussianSignalDistractor",
    "LinearSignalDistractor",
    "MaskedImageSignalDistractor",
    "central_square_mask",
    "VonMisesFisherMixture",
    "smoothed_score",
    "smoothed_class_score",
    "smoothed_posterior_grad",
    "exact_denoiser",
]
