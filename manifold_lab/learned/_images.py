"""Input handling shared by the learned models: images ``[n, c, h, w]`` or flattened ``[n, D]``."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from manifold_lab._validation import check_finite

__all__ = ["infer_image_shape", "as_images", "module_placement", "placed"]

#: Flattened sizes whose image shape is unambiguous (MNIST-like and CIFAR-like images).
KNOWN_SHAPES = {784: (1, 28, 28), 1024: (1, 32, 32), 3072: (3, 32, 32)}


def infer_image_shape(x: torch.Tensor, image_shape: Sequence[int] | None = None) -> tuple[int, int, int]:
    """``(c, h, w)`` of the images in ``x`` (``[n, c, h, w]``, or ``[n, D]`` with a known or given shape)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor [n, c, h, w] or [n, D], got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 4:
        shape = tuple(x.shape[1:])
        if image_shape is not None and tuple(image_shape) != shape:
            raise ValueError(f"x has images of shape {list(shape)} but image_shape={list(image_shape)}")
        return shape
    if x.ndim != 2:
        raise ValueError(f"x must have shape [n, c, h, w] or [n, D], got {list(x.shape)}")
    if image_shape is None:
        if x.shape[1] not in KNOWN_SHAPES:
            raise ValueError(f"cannot tell the image shape of flattened x with D={x.shape[1]}; "
                             "pass image_shape=(c, h, w) or x as [n, c, h, w]")
        return KNOWN_SHAPES[x.shape[1]]
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or math.prod(shape) != x.shape[1]:
        raise ValueError(f"image_shape={list(image_shape)} does not hold D={x.shape[1]} values")
    return shape


def as_images(x: torch.Tensor, image_shape: Sequence[int]) -> torch.Tensor:
    """``x`` ``[n, D]`` or ``[n, c, h, w]`` -> ``[n, c, h, w]`` (checked, finite)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    shape = tuple(image_shape)
    if x.ndim == 2 and x.shape[1] == math.prod(shape):
        x = x.reshape(x.shape[0], *shape)
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"x must have shape [n, {', '.join(map(str, shape))}] or [n, {math.prod(shape)}], "
                         f"got {list(x.shape)}")
    return check_finite("x", x)


def module_placement(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of a module's first parameter (CPU float32 for a parameter-free one)."""
    for p in module.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def placed(x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """``x`` moved to ``module``'s device and dtype."""
    device, dtype = module_placement(module)
    return x.to(device=device, dtype=dtype)
