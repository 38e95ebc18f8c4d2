"""What every reader shares: one error type, file opening (gzip or raw), image/label checks.

Readers never download. A missing, truncated or corrupt file is a one-line
:class:`DatasetError` naming the file and saying how to get a good copy.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

__all__ = ["DatasetError", "read_bytes", "find_file", "to_images", "to_labels"]

#: First two bytes of every gzip stream (RFC 1952).
GZIP_MAGIC = b"\x1f\x8b"
#: Largest value of an 8-bit pixel: images are returned as ``uint8 / 255``.
UINT8_MAX = 255.0


class DatasetError(ValueError):
    """A dataset file is missing, truncated, corrupt or unexpected (one-line message)."""


def find_file(folder: Path, name: str, how_to_get: str) -> Path:
    """``folder/name`` or ``folder/name.gz``, whichever exists (raw first), else ``DatasetError``."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{folder / name}[.gz] not found; {how_to_get}")


def read_bytes(path: str | os.PathLike, how_to_get: str) -> bytes:
    """The content of ``path``, gunzipped when it starts with the gzip magic.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable, or its gzip stream is truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} not found; {how_to_get}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path} is unreadable ({exc.strerror}); {how_to_get}") from None
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{path} is a truncated or corrupt gzip file ({type(exc).__name__}); "
                           f"{how_to_get}") from None


def to_images(pixels: np.ndarray, source: str) -> torch.Tensor:
    """``uint8 [n, c, h, w]`` -> float32 in [0, 1] (``pixels / 255``); ``source`` names the file in errors."""
    if pixels.dtype != np.uint8:
        raise DatasetError(f"{source}: expected uint8 pixels, got {pixels.dtype}")
    if pixels.ndim != 4 or pixels.shape[0] == 0:
        raise DatasetError(f"{source}: expected a non-empty [n, c, h, w] image array, "
                           f"got shape {list(pixels.shape)}")
    return torch.from_numpy(np.ascontiguousarray(pixels)).to(torch.float32).div_(UINT8_MAX)


def to_labels(labels: np.ndarray | list, n: int, n_classes: int, source: str, how_to_get: str) -> torch.Tensor:
    """Integer labels ``[n]`` in ``[0, n_classes)`` -> int64 tensor, else ``DatasetError``."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise DatasetError(f"{source}: expected a 1-d array of integer labels, got "
                           f"{arr.dtype} of shape {list(arr.shape)}; {how_to_get}")
    if arr.shape[0] != n:
        raise DatasetError(f"{source}: {arr.shape[0]} labels for {n} images; the files do not belong "
                           f"together; {how_to_get}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n_classes):
        raise DatasetError(f"{source}: labels must lie in [0, {n_classes - 1}], got range "
                           f"[{int(arr.min())}, {int(arr.max())}]; {how_to_get}")
    return torch.from_numpy(arr.astype(np.int64))
