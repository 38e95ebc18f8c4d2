"""CIFAR-10 from the standard ``cifar-10-batches-py`` folder, through a restricted unpickler.

The batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) are pickles of a
dict ``{b"data": uint8 [10000, 3072], b"labels": [10000 ints], ...}``; each row is
1024 red, 1024 green, then 1024 blue values of a row-major 32x32 image, i.e. the
channel-first ``[3, 32, 32]`` layout. A pickle can name any callable and so run
any code: :class:`RestrictedUnpickler` resolves only the globals the format uses
(numpy array and dtype reconstruction, ``_codecs.encode`` for byte strings) and
refuses every other one.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from manifold_lab.datasets._files import DatasetError, read_bytes, to_images, to_labels

__all__ = ["load_cifar10", "RestrictedUnpickler", "restricted_loads", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
IMAGE_SHAPE = (3, 32, 32)
_HOW = ("put the python version of CIFAR-10 (cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html, extracted) at root")


def _allowed_globals() -> dict[tuple[str, str], object]:
    from numpy._core import multiarray  # numpy >= 2 (``numpy.core`` is its deprecated alias)
    import _codecs

    reconstruct = multiarray._reconstruct
    return {("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _codecs.encode}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only plain containers and numpy array reconstruction.

    ``find_class`` admits ``numpy.(_)core.multiarray._reconstruct``, ``numpy.ndarray``,
    ``numpy.dtype`` and ``_codecs.encode``; any other global (``os.system``,
    ``builtins.eval``, a class with ``__reduce__``) raises ``pickle.UnpicklingError``
    before it is imported. Persistent ids are refused too.
    """

    _allowed = None

    def find_class(self, module: str, name: str):
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        try:
            return RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def restricted_loads(data: bytes):
    """``pickle.loads`` through :class:`RestrictedUnpickler` (``encoding="bytes"``, as the
    Python 2 CIFAR pickles need)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _folder(root: Path) -> Path:
    for folder in (root / FOLDER, root):
        if (folder / "test_batch").is_file() or (folder / "data_batch_1").is_file():
            return folder
    raise DatasetError(f"no {FOLDER} folder (data_batch_1 .. test_batch) at {root}; {_HOW}")


def _read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        batch = restricted_loads(read_bytes(path, _HOW))
    except pickle.UnpicklingError as exc:
        raise DatasetError(f"{path} refused: {exc} (a CIFAR batch holds only a dict of arrays and "
                           f"lists; this file could run code); {_HOW}") from None
    except Exception as exc:  # truncated/garbled streams raise many types; all mean "corrupt"
        raise DatasetError(f"{path} is truncated or corrupt ({type(exc).__name__}); {_HOW}") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: expected a dict, got {type(batch).__name__}; {_HOW}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DatasetError(f"{path}: missing 'data' array or 'labels'; {_HOW}")
    width = int(np.prod(IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
        raise DatasetError(f"{path}: 'data' must be uint8 [n, {width}], got {data.dtype} "
                           f"{list(data.shape)}; {_HOW}")
    x = to_images(data.reshape(-1, *IMAGE_SHAPE), str(path))
    try:
        label_array = np.asarray(labels, dtype=np.int64) if isinstance(labels, list) else labels
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: 'labels' must be a list of ints; {_HOW}") from None
    return x, to_labels(label_array, x.shape[0], len(CIFAR10_CLASSES), str(path), _HOW)


def load_cifar10(root: str | os.PathLike, *, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 (Krizhevsky 2009) from local pickles; never downloads, never runs pickled code.

    Parameters
    ----------
    root : path-like
        The folder holding ``cifar-10-batches-py`` (torchvision's ``root``) or that
        folder itself.
    split : {"train", "test"}
        The five training batches (50,000 images) or ``test_batch`` (10,000).

    Returns
    -------
    x : Tensor, shape [n, 3, 32, 32], float32 in [0, 1] (channel-first, as stored)
    y : Tensor, shape [n], int64 in [0, 9] (names: ``CIFAR10_CLASSES``)
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _folder(Path(root))
    parts = [_read_batch(folder / name) for name in (TRAIN_BATCHES if split == "train" else TEST_BATCHES)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
