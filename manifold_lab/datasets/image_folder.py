"""Class-per-subdirectory image folders, read as torchvision 0.29's ``ImageFolder`` reads them.

``root/<class name>/**/<image>``: classes are the sorted names of every subdirectory
of ``root`` (``find_classes``), label ``i`` is the ``i``-th of them; the images of a
class are every file below its folder, nested folders included, whose name ends in
one of torchvision's ``IMG_EXTENSIONS`` (any case), in ``make_dataset``'s order:
``sorted(os.walk(class_dir, followlinks=True))``, files sorted within each folder.
A class folder without such a file is an error naming it, as torchvision's default
(``allow_empty=False``) raises; ``datasets.imagenet`` keeps empty folders with their
index instead (torchvision's ``allow_empty=True``), for a few classes of a
1,000-class validation set. Read with Pillow (a dependency of matplotlib).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from manifold_lab.datasets._files import DatasetError, to_images

__all__ = ["load_image_folder", "image_folder_classes", "images_in", "IMAGE_SUFFIXES"]

#: torchvision 0.29's ``IMG_EXTENSIONS`` (``torchvision.datasets.folder``), matched case-insensitively.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Pillow modes kept as one channel; every other mode is converted to RGB.
_GREY_MODES = ("1", "L", "I", "I;16", "F")


def image_folder_classes(root: str | os.PathLike) -> list[str]:
    """Sorted names of every subdirectory of ``root`` (torchvision's ``find_classes``).

    Raises
    ------
    DatasetError
        ``root`` missing, or a class folder holding no image (torchvision raises too;
        dropping it would shift every later label).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} not found; pass a folder with one subfolder per class")
    classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
    empty = [c for c in classes if not images_in(root / c)]
    if empty:
        raise DatasetError(f"class folder(s) {', '.join(empty[:3])}{', ...' if len(empty) > 3 else ''} of {root} "
                           f"hold no image ({'/'.join(IMAGE_SUFFIXES)}); add images or remove the folder "
                           "(as torchvision's ImageFolder, an empty class is not skipped: labels would shift)")
    return classes


def images_in(folder: Path) -> list[Path]:
    """The image files below ``folder`` (nested folders included; ``IMAGE_SUFFIXES``, any case), in
    torchvision's ``make_dataset`` order: ``sorted(os.walk(folder, followlinks=True))``, names sorted."""
    return [Path(top) / name for top, _, names in sorted(os.walk(folder, followlinks=True))
            for name in sorted(names) if name.lower().endswith(IMAGE_SUFFIXES)]


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
        raise DatasetError(f"{root} has no class subfolders; pass a folder with one subfolder of images per class")
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
