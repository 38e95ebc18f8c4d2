"""Where a score model works at a lower resolution than the classifier (ImageNet: 224 px vs 64 px).

The paper compares the saliency of a 224 px ImageNet model with an ImageNet-64
diffusion model's score on a 64 px downsample. Here both resolutions meet through
one linear operator, the antialiased bilinear downsample

    A : R^{c x H x W} -> R^{c x h x w},   A = torch.nn.functional.interpolate(
        mode="bilinear", antialias=True, align_corners=False),

which agrees with Pillow's ``Image.resize(..., BILINEAR)`` on float images (a
triangle filter widened by the scale factor; tests check the agreement to 1e-6):

- the score model sees ``z = A x`` and gives ``s(z)`` in ``R^{c h w}``;
- the classifier's input gradient ``g = grad_x f(x)`` at 224 px is compared through
  the same operator, ``cos(A g, s(A x))``. ``A`` is a blur followed by sampling, so
  ``A g`` is the low-frequency content of ``g`` that a 64 px score can express at all;
- tangent spaces fitted at 64 px (an autoencoder's decoder Jacobian ``B``, ``[hw c, k]``)
  are lifted by the adjoint, ``span(A^T B)`` (:func:`lift_basis`, orthonormalised): the
  224 px directions ``u`` whose downsample ``A u`` moves along the learned manifold;
  every direction with ``A u = 0`` (the detail a 64 px image cannot hold) is normal.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["antialiased_resize", "resize_adjoint", "lift_basis"]

#: Images (times tangent directions) per adjoint pass of :func:`lift_basis`.
_LIFT_CHUNK = 64


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    hw = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return hw


def antialiased_resize(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """``A x``: antialiased bilinear resize, ``[n, c, H, W] -> [n, c, h, w]`` (differentiable, linear)."""
    if x.ndim != 4:
        raise ValueError(f"x must have shape [n, c, H, W], got {list(x.shape)}")
    hw = _hw(size)
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)


def resize_adjoint(v: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """``A^T v`` for ``A = antialiased_resize(., (h, w))`` from ``size = (H, W)``:
    ``[n, c, h, w] -> [n, c, H, W]`` (the exact adjoint, by reverse-mode differentiation)."""
    H, W = _hw(size)
    u = torch.zeros((*v.shape[:2], H, W), dtype=v.dtype, device=v.device, requires_grad=True)
    with torch.enable_grad():
        (out,) = torch.autograd.grad(antialiased_resize(u, v.shape[-2:]), u, grad_outputs=v)
    return out


def lift_basis(basis: torch.Tensor, low_shape: Sequence[int], size: int | Sequence[int]) -> torch.Tensor:
    """Orthonormal bases of ``span(A^T B)``: tangent spaces at ``low_shape`` lifted to ``size``.

    Parameters
    ----------
    basis : Tensor, shape [n, c h w, k]
        Bases at the low resolution ``low_shape = (c, h, w)``.
    size : int or (H, W)
        The high resolution.

    Returns
    -------
    Tensor, shape [n, c H W, k]
        ``Q`` of the thin QR decomposition of ``A^T B`` at each point (``Q^T Q = I_k``).
    """
    c, h, w = (int(s) for s in low_shape)
    n, d, k = basis.shape
    if d != c * h * w:
        raise ValueError(f"basis has {d} rows, low_shape {tuple(low_shape)} has {c * h * w} values")
    H, W = _hw(size)
    cols = basis.transpose(1, 2).reshape(n * k, c, h, w)
    lifted = torch.cat([resize_adjoint(part, (H, W)) for part in cols.split(_LIFT_CHUNK)])
    lifted = lifted.reshape(n, k, c * H * W).transpose(1, 2)
    return torch.linalg.qr(lifted).Q
