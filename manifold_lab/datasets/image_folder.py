"""Class-per-subdirectory image folders (ImageNet / torchvision ``ImageFolder`` layout).

``root/<class name>/<image>.png|.jpg|.jpeg``; classes are the sorted subdirectory
names, label ``i`` is the ``i``-th of them. Read with Pillow (a dependency of matplotlib).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from manifold_lab.datasets._files import DatasetError, to_images

__all__ = ["load_image_folder", "image_folder_classes", "images_in", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Pillow modes kept as one channel; every other mode is converted to RGB.
_GREY_MODES = ("1", "L", "I", "I;16", "F")


def image_folder_classes(root: str | os.PathLike) -> list[str]:
    """Sorted class names (subdirectories of ``root`` holding at least one image)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} not found; pass a folder with one subfolder per class")
    return sorted(d.name for d in root.iterdir() if d.is_dir() and images_in(d))


def images_in(folder: Path) -> list[Path]:
    """The image files (``IMAGE_SUFFIXES``, any case) directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in hw):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return hw


def load_image_folder(root: str | os.PathLike, *,
                      size: int | tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a class-per-subdirectory folder.

    Parameters
    ----------
    root : path-like
    size : int or (height, width), optional
        Resize every image to this size (Pillow bilinear with antialiasing, the
        aspect ratio is not kept). ``None``: all images must already share one size.

    Returns
    -------
    x : Tensor, shape [n, c, h, w], float32 in [0, 1]
        ``c = 1`` when every image is grey-scale, else 3 (RGB; alpha is dropped).
    y : Tensor, shape [n], int64: index into :func:`image_folder_classes` ``(root)``
    """
    from PIL import Image, UnidentifiedImageError

    hw = _size(size)
    classes = image_folder_classes(root)
    if not classes:
        raise DatasetError(f"{root} has no class subfolders with {'/'.join(IMAGE_SUFFIXES)} images")
    items = [(p, label) for label, name in enumerate(classes) for p in images_in(Path(root) / name)]
    images, grey = [], True
    for path, _ in items:
        try:
            with Image.open(path) as img:
                img.load()
                grey = grey and img.mode in _GREY_MODES
                images.append(img.copy())
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DatasetError(f"{path} is not a readable image ({type(exc).__name__}); "
                               "replace or remove it") from None
    arrays = []
    for (path, _), img in zip(items, images):
        img = img.convert("L" if grey else "RGB")
        if hw is not None and img.size != (hw[1], hw[0]):
            img = img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        if arrays and arr.shape != arrays[0].shape:
            raise DatasetError(f"{path} is {arr.shape[2]}x{arr.shape[1]} but {items[0][0]} is "
                               f"{arrays[0].shape[2]}x{arrays[0].shape[1]}; pass size= to resize")
        arrays.append(arr)
    labels = torch.tensor([label for _, label in items], dtype=torch.int64)
    return to_images(np.stack(arrays), str(root)), labels
