"""Data kinds: one module per kind (its spec dataclass, build and ``@register_kind``).

- ``vmf_sphere``: :class:`VmfSphereSpec` (von Mises–Fisher mixture on a sphere);
- ``images``: what the image kinds share (:class:`ImageKindSpec`, :class:`ImageReference`);
- ``mnist``: :class:`MnistSpec` (MNIST digits, learned tangents and score);
- ``fmnist``: :class:`FashionMnistSpec` (real Fashion-MNIST, learned tangents and score);
- ``fmnist_distractor``: :class:`FashionMnistDistractorSpec` (two-half images, Figure 5);
- ``cifar10``: :class:`Cifar10Spec` (CIFAR-10 from a user's folder; learned tangents, fitted or pretrained score);
- ``signal_distractor``: :class:`SignalDistractorSpec` (Gaussian signal + distractor);
- ``registry``: :data:`KINDS`, :func:`register_kind`, :func:`kind_class`.

A new kind is a new module here plus its import line below (see docs/extending.md).
"""

from manifold_lab.experiments.kinds.exact import ExactReference
from manifold_lab.experiments.kinds.registry import (
    KINDS, data_spec_from_dict, kind_class, register_kind, unregister_kind,
)
from manifold_lab.experiments.kinds.images import ImageKindSpec, ImageReference
from manifold_lab.experiments.kinds.mnist import MnistSpec
from manifold_lab.experiments.kinds.fmnist import FashionMnistSpec
from manifold_lab.experiments.kinds.cifar10 import Cifar10Spec
from manifold_lab.experiments.kinds.fmnist_distractor import FashionMnistDistractorSpec
from manifold_lab.experiments.kinds.signal_distractor import SignalDistractorSpec
from manifold_lab.experiments.kinds.vmf_sphere import VmfSphereSpec

__all__ = ["KINDS", "Cifar10Spec", "ExactReference", "FashionMnistDistractorSpec", "FashionMnistSpec", "ImageKindSpec",
           "ImageReference", "MnistSpec", "SignalDistractorSpec", "VmfSphereSpec", "data_spec_from_dict",
           "kind_class", "register_kind", "unregister_kind"]
