"""Data kind ``fmnist``: real Fashion-MNIST images with learned ground truth.

The 60,000 training images and 10,000 test images of the four IDX files in
``data_dir`` (default: the Debian package ``dataset-fashion-mnist``). Everything
else (learned tangents and score, the two alignment protocols, the paper's
robustness variant at its CIFAR steps scaled to the image norm, LPIPS at 64 px)
is the image kinds' common machinery, ``kinds.images``.
"""

from __future__ import annotations

from dataclasses import dataclass

from manifold_lab.datasets import load_fashion_mnist
from manifold_lab.experiments.kinds.images import (
    LPIPS_SIZE, ImageKindSpec, ImageReference, ImageSplits, load_splits, split_counts, subset,
)
from manifold_lab.experiments.kinds.registry import register_kind

__all__ = ["FashionMnistSpec", "FashionMnistReference", "ImageReference", "ImageSplits", "load_splits", "subset",
           "LPIPS_SIZE", "split_counts"]


@register_kind
@dataclass(frozen=True)
class FashionMnistSpec(ImageKindSpec):
    """Fashion-MNIST with an autoencoder's tangent spaces and a denoiser's score
    (fields: :class:`~manifold_lab.experiments.kinds.images.ImageKindSpec`;
    ``data_dir`` ``None`` is the Debian package's folder)."""

    kind = "fmnist"

    def load(self) -> ImageSplits:
        return load_splits(self.data_dir, load_fashion_mnist)

    def model_inputs(self):
        return {"in_channels": 1, "n_classes": 10, "image_size": 28}


#: The former name of :class:`ImageReference` (kept for users' scripts).
FashionMnistReference = ImageReference
