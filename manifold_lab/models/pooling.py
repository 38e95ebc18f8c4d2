"""2x2 average pooling by convolutions: ``nn.AvgPool2d(2)``'s numbers, bitwise, faster on one CPU thread.

``torch.nn.AvgPool2d(2)``'s CPU kernels are slow next to the convolutions of the
small image models. A depthwise convolution with the fixed kernel
``[[1/4, 1/4], [1/4, 1/4]]`` and stride 2 computes the same average (each product
with 1/4 is exact, the four terms are summed in the same order) through the
vectorised convolution kernels; where the output is 1x1 the convolution sums in
another order, so there ``F.avg_pool2d`` is used, as on every device but the CPU
(where this was neither needed nor checked). The backward pass spreads each
gradient over its window (``grad / 4``, exact, a grouped transposed convolution), and
its own backward is the pooling again, so gradient-norm training (a second-order
derivative) never differentiates a convolution twice. ``benchmarks/bench_pooling.py``
measures it (the layer 1.7-1.95x faster, a ``SmallCNN`` training step 1.0-1.3x), and
``tests/test_models_pooling.py`` checks that outputs and input gradients, first and
second order, and whole training runs are bitwise those of ``AvgPool2d(2)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AvgPool2x2", "avg_pool_2x2"]

#: Side of the pooling window (and its stride).
_WINDOW = 2


def _pool(x: torch.Tensor) -> torch.Tensor:
    """The forward pass: the depthwise convolution, or ``F.avg_pool2d`` where the output is
    1x1 (there the convolution takes another kernel path and sums in another order)."""
    if x.shape[-2] // _WINDOW == 1 and x.shape[-1] // _WINDOW == 1:
        return F.avg_pool2d(x, _WINDOW)
    channels = x.shape[1]
    kernel = x.new_full((channels, 1, _WINDOW, _WINDOW), 1.0 / _WINDOW**2)
    return F.conv2d(x, kernel, stride=_WINDOW, groups=channels)


def _unpool(grad: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The backward pass: ``grad / 4`` copied to each pixel of its window, zero on a dropped
    last row or column (``avg_pool2d_backward``'s numbers: one exact product per pixel)."""
    channels = grad.shape[1]
    kernel = grad.new_full((channels, 1, _WINDOW, _WINDOW), 1.0 / _WINDOW**2)
    out = F.conv_transpose2d(grad, kernel, stride=_WINDOW, groups=channels)  # one product per pixel
    if (height, width) != tuple(out.shape[-2:]):
        out = F.pad(out, (0, width - out.shape[-1], 0, height - out.shape[-2]))
    return out


class _Pool(torch.autograd.Function):
    """2x2 average pooling whose backward is :class:`_Unpool` (and whose second-order
    terms, needed by gradient-norm training, are this pooling again)."""

    @staticmethod
    def forward(x):
        return _pool(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.size = tuple(inputs[0].shape[-2:])

    @staticmethod
    def backward(ctx, grad):
        return _Unpool.apply(grad, *ctx.size)


class _Unpool(torch.autograd.Function):
    """The adjoint of :class:`_Pool`; its own backward is :class:`_Pool`."""

    @staticmethod
    def forward(grad, height, width):
        return _unpool(grad, height, width)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return _Pool.apply(grad), None, None


def avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``[n, c, h, w] -> [n, c, h // 2, w // 2]``: the mean of each non-overlapping 2x2 window.

    Implements ``y[i, k, a, b] = (1/4) sum_{r, s in {0, 1}} x[i, k, 2a + r, 2b + s]``
    (odd sizes drop their last row or column, as ``F.avg_pool2d(x, 2)`` does) as a
    depthwise convolution; the backward pass spreads ``grad / 4`` over each window, and
    the chain is differentiable to any order (pooling and spreading are each other's
    adjoints).

    Examples
    --------
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> avg_pool_2x2(x)
    tensor([[[[ 2.5000,  4.5000],
              [10.5000, 12.5000]]]])
    """
    if x.ndim != 4:
        raise ValueError(f"avg_pool_2x2 needs images [n, c, h, w], got shape {list(x.shape)}")
    if x.device.type != "cpu":  # measured and checked bitwise on the CPU only
        return F.avg_pool2d(x, _WINDOW)
    return _Pool.apply(x)


class AvgPool2x2(nn.Module):
    """``nn.AvgPool2d(2)`` with the numbers of :func:`avg_pool_2x2` and no parameters or
    buffers (state dicts are unchanged when it replaces ``nn.AvgPool2d(2)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool_2x2(x)
