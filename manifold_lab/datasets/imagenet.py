"""ImageNet-style evaluation folders: torchvision's class order and evaluation transform.

``root/<wnid>/<image>.JPEG`` (the ``ImageFolder`` layout of the ILSVRC-2012
validation set after the usual per-class sorting). Labels follow
``torchvision.datasets.ImageFolder``: class ``i`` is the ``i``-th of the *sorted
subdirectory names*, which is the order the published torchvision / RobustBench /
MadryLab ImageNet weights were trained with. Files are found as torchvision finds
them (``datasets.image_folder.images_in``: nested folders, torchvision's
extensions, its order). Where this differs from torchvision: empty subdirectories
keep their index (torchvision's ``ImageFolder(root, allow_empty=True)``; its default
raises), so a folder holding a few classes' images keeps the label indices of the
full 1,000.

Images go through the standard evaluation transform (torchvision's
``Resize(256)`` + ``CenterCrop(224)`` on Pillow images): the shorter side is resized
to ``resize`` pixels with Pillow's bilinear filter, which is antialiased when it
shrinks (the long side becomes ``int(resize * long / short)``), then the central
``crop x crop`` square is cut out (offsets ``int(round((side - crop) / 2))``).
Only the requested files are decoded, so evaluating 100 images of a 50,000-image
folder reads 100 files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from manifold_lab.datasets._files import DatasetError, to_images
from manifold_lab.datasets.image_folder import IMAGE_SUFFIXES, images_in

__all__ = ["imagenet_classes", "imagenet_items", "load_imagenet_images", "RESIZE", "CROP"]

#: Shorter side after resizing, and the side of the centre crop (torchvision's ImageNet evaluation).
RESIZE = 256
CROP = 224


def imagenet_classes(root: str | os.PathLike) -> list[str]:
    """Sorted names of every subdirectory of ``root`` (torchvision's ``find_classes``), empty ones included."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} not found; pass the ImageNet validation folder "
                           "(one subfolder per class)")
    return sorted(d.name for d in os.scandir(root) if d.is_dir())


def imagenet_items(root: str | os.PathLike) -> list[tuple[Path, int]]:
    """``(path, label)`` of every image, classes in :func:`imagenet_classes` order, files sorted by name."""
    classes = imagenet_classes(root)
    items = [(p, label) for label, name in enumerate(classes) for p in images_in(Path(root) / name)]
    if not items:
        raise DatasetError(f"{root} has no class subfolders with images ({'/'.join(IMAGE_SUFFIXES)})")
    return items


def _crop_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    left, top = int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0))
    return left, top, left + crop, top + crop


def load_imagenet_images(paths: Sequence[str | os.PathLike], *, resize: int = RESIZE,
                         crop: int = CROP) -> torch.Tensor:
    """Decode ``paths`` with the evaluation transform of the module docstring.

    Parameters
    ----------
    paths : sequence of path-like
    resize : int
        Shorter side after the (antialiased bilinear) resize.
    crop : int
        Side of the centre crop, ``crop <= resize``.

    Returns
    -------
    Tensor, shape [n, 3, crop, crop], float32 in [0, 1] (RGB; grey images are replicated).
    """
    from PIL import Image, UnidentifiedImageError

    if not (isinstance(resize, int) and isinstance(crop, int) and 0 < crop <= resize):
        raise ValueError(f"need integers 0 < crop <= resize, got crop={crop!r}, resize={resize!r}")
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DatasetError(f"{path} is not a readable image ({type(exc).__name__}); "
                               "replace or remove it") from None
        w, h = img.size
        short, long = min(w, h), max(w, h)
        new_long = int(resize * long / short)
        size = (resize, new_long) if w <= h else (new_long, resize)
        if img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        img = img.crop(_crop_box(*img.size, crop))
        arrays.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
    if not arrays:
        raise ValueError("no image paths given")
    return to_images(np.stack(arrays), "ImageNet images")
