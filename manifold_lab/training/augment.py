"""Seeded training-time image augmentations (the paper's CIFAR-10 crop + flip, digit shifts).

An augmentation is ``augment(x, generator) -> x'`` on a batch ``[n, c, h, w]``,
drawing every random choice from ``generator`` (the trainer passes one seeded per
epoch, see :func:`~manifold_lab.training.train`), so a seed gives the same crops
on every run and a resumed run the same as an uninterrupted one. Registered by
name in :data:`AUGMENTATIONS` (``TrainSpec.augment`` of the presets).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from manifold_lab._validation import check_generator, check_positive_int

__all__ = ["AUGMENTATIONS", "crop_flip", "shift", "get_augmentation", "CROP_PADDING", "SHIFT_PIXELS"]

#: Zero padding of the random crop (torchvision ``RandomCrop(32, padding=4)``, the paper's).
CROP_PADDING = 4
#: Largest translation of :func:`shift`, in pixels (MNIST digits: 1 px, ``presets.mnist``).
SHIFT_PIXELS = 1


def _check_images(name: str, x, generator, padding: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"{name} needs images [n, c, h, w], got {list(getattr(x, 'shape', []))}")
    check_positive_int("padding", padding, minimum=0)
    check_generator(generator, x.device)


def _crops(x: torch.Tensor, offsets: torch.Tensor, padding: int, flip: torch.Tensor | None) -> torch.Tensor:
    """``pad(x_i)[:, a_i : a_i + h, b_i : b_i + w]`` per image (``offsets`` ``[2, n]``), mirrored
    left-right where ``flip`` ``[n]`` is True."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [n, 1, h, 1]
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [n, 1, 1, w]
    if flip is not None:
        cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    index = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[index, channel, rows, cols]


def crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, *,
              padding: int = CROP_PADDING) -> torch.Tensor:
    """Random crop after zero padding, then a random horizontal flip, per image.

    Image ``i`` becomes ``pad(x_i)[:, a_i : a_i + h, b_i : b_i + w]`` with offsets
    ``a_i, b_i`` uniform in ``{0, ..., 2 padding}``, mirrored left-right with
    probability 1/2 (torchvision's ``RandomCrop(h, padding)`` then
    ``RandomHorizontalFlip()``, batched).

    Parameters
    ----------
    x : Tensor, shape [n, c, h, w]
    generator : torch.Generator, optional
        On ``x``'s device; the offsets and flips are drawn from it.
    padding : int
        Zero padding on every side (>= 0; 0 leaves only the flip).

    Returns
    -------
    Tensor, shape [n, c, h, w]
    """
    _check_images("crop_flip", x, generator, padding)
    n = x.shape[0]
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=x.device)
    flip = torch.rand(n, generator=generator, device=x.device) < 0.5
    return _crops(x, offsets, padding, flip)


def shift(x: torch.Tensor, generator: torch.Generator | None = None, *,
          padding: int = SHIFT_PIXELS) -> torch.Tensor:
    """Random translation by up to ``padding`` pixels per axis, zero fill, per image.

    Image ``i`` becomes ``pad(x_i)[:, a_i : a_i + h, b_i : b_i + w]`` with offsets
    ``a_i, b_i`` uniform in ``{0, ..., 2 padding}`` (:func:`crop_flip` without the
    flip, which would not keep a digit a digit).

    Parameters
    ----------
    x : Tensor, shape [n, c, h, w]
    generator : torch.Generator, optional
        On ``x``'s device; the offsets are drawn from it.
    padding : int
        Largest shift (>= 0; 0 is the identity). Default :data:`SHIFT_PIXELS`.

    Returns
    -------
    Tensor, shape [n, c, h, w]

    Examples
    --------
    >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 2] = 1.0
    >>> y = shift(x, torch.Generator().manual_seed(0))
    >>> int(y.sum()), tuple(int(i) for i in y[0, 0].nonzero()[0])  # moved by at most 1 pixel
    (1, (1, 3))
    """
    _check_images("shift", x, generator, padding)
    offsets = torch.randint(0, 2 * padding + 1, (2, x.shape[0]), generator=generator, device=x.device)
    return _crops(x, offsets, padding, None)


#: name -> augmentation ``(x, generator) -> x`` (``TrainSpec.augment``).
AUGMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {"crop_flip": crop_flip, "shift": shift}


def get_augmentation(name: str | None) -> Callable[..., torch.Tensor] | None:
    """The augmentation registered as ``name`` (``None``: no augmentation); one-line error if unknown."""
    if name is None:
        return None
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {sorted(AUGMENTATIONS)} or None")
    return AUGMENTATIONS[name]
