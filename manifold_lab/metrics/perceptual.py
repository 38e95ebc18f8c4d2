"""Perceptual similarity of an input gradient and a score image (docs/theory.md, "Learned ground truth").

Three measures of how alike two images ``a, b`` (``[n, c, h, w]``) are:

- :func:`image_cosine` — ``<a, b> / (|a| |b|)`` per image: exact, scale-free, needs no
  normalisation (always available);
- :func:`ssim_similarity` — SSIM (Wang et al. 2004) from ``pytorch-msssim`` (kept over
  torchmetrics: a single pure-torch module with no further dependencies, and the
  same Gaussian-window SSIM), 11-px window. MS-SSIM needs images larger than
  ``(win - 1) 2^4 = 160`` px, so it is not offered for 28-32 px images;
- :func:`lpips_similarity` — ``1 - LPIPS``-AlexNet, the paper's measure, from local
  weight files (:class:`~manifold_lab.metrics.lpips.LPIPSAlexNet`). At 32 px AlexNet's
  deepest (relu3-5) features are 1x1 and below 31 px nothing is left (28 px MNIST
  images must be upsampled); ``upsample_to=64`` (bilinear) gives relu3-5 3x3 maps.

SSIM and LPIPS are not scale-free, so gradients and scores are first rescaled per
image. ``normalize="max_abs"`` divides each image by its largest absolute value (the
paper's choice, into [-1, 1]); ``normalize="quantile"`` divides by the 99th
percentile of ``|v|`` and clips to [-1, 1] (equally scale-free, but one extreme pixel
no longer sets the scale of the whole image).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from manifold_lab._validation import check_finite
from manifold_lab.metrics.alignment import score_cosine
from manifold_lab.metrics.lpips import LPIPSAlexNet

__all__ = ["image_cosine", "ssim_similarity", "lpips_similarity", "normalize_images", "NORMALIZATIONS",
           "ROBUST_QUANTILE", "SSIM_WINDOW"]

NORMALIZATIONS = ("max_abs", "quantile", None)
#: Quantile of ``|v|`` that ``normalize="quantile"`` maps to 1.
ROBUST_QUANTILE = 0.99
#: SSIM's Gaussian window (Wang et al.'s 11 px, sigma 1.5).
SSIM_WINDOW, SSIM_WINDOW_SIGMA = 11, 1.5
#: Smallest side AlexNet's three max-pools leave a 1x1 map of (conv1 7 px, pools 3 and 1).
LPIPS_MIN_SIZE = 31
#: Value range of normalised images ([-1, 1]), SSIM's ``data_range``.
NORMALIZED_RANGE = 2.0


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim != 4:
            raise ValueError(f"{name} must be a floating-point image batch [n, c, h, w], got "
                             f"{getattr(t, 'dtype', type(t).__name__)} {list(getattr(t, 'shape', []))}")
        check_finite(name, t)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    return a, b.to(a)


def normalize_images(v: torch.Tensor, mode: str | None = "max_abs") -> torch.Tensor:
    """Rescale each image of ``v`` ``[n, c, h, w]`` into [-1, 1] (module docstring); all-zero images stay 0."""
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(NORMALIZATIONS)}, got {mode!r}")
    if mode is None:
        return v
    mag = v.flatten(1).abs()
    scale = mag.amax(1) if mode == "max_abs" else torch.quantile(mag, ROBUST_QUANTILE, dim=1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (v / scale[:, None, None, None]).clamp(-1.0, 1.0)


def image_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image cosine ``<a, b> / (|a| |b|)``, ``[n, c, h, w] x2 -> [n]`` (NaN for a zero image)."""
    a, b = _check_pair(a, b)
    return score_cosine(a.flatten(1), b.flatten(1))


def ssim_similarity(a: torch.Tensor, b: torch.Tensor, *, normalize: str | None = "max_abs") -> torch.Tensor:
    """SSIM of the normalised images, ``[n, c, h, w] x2 -> [n]`` in [-1, 1] (needs ``h, w >= 11``).

    Uses ``pytorch_msssim.ssim`` with ``data_range=2`` (normalised images span [-1, 1])
    and an 11-px Gaussian window (sigma 1.5), averaged over the valid positions.
    """
    from pytorch_msssim import ssim

    a, b = _check_pair(a, b)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} px, got {list(a.shape[-2:])}")
    na, nb = normalize_images(a, normalize), normalize_images(b, normalize)
    return ssim(na, nb, data_range=NORMALIZED_RANGE, size_average=False, win_size=SSIM_WINDOW,
                win_sigma=SSIM_WINDOW_SIGMA)


def lpips_similarity(a: torch.Tensor, b: torch.Tensor, *, model: LPIPSAlexNet | None = None,
                     backbone_path: str | os.PathLike | None = None, linear_path: str | os.PathLike | None = None,
                     normalize: str | None = "max_abs", upsample_to: int | None = None) -> torch.Tensor:
    """``1 - LPIPS(a, b)`` (AlexNet, v0.1) of the normalised images, ``[n, c, h, w] x2 -> [n]``.

    Parameters
    ----------
    a, b : Tensor, shape [n, c, h, w]
        ``c = 1`` images are repeated to 3 channels; ``c`` must be 1 or 3.
    model : LPIPSAlexNet, optional
        A loaded network (reuse it across calls); else one is built from the files.
    backbone_path, linear_path : path-like, optional
        Weight files (see :class:`~manifold_lab.metrics.lpips.LPIPSAlexNet`; defaults: torch
        hub cache and the installed lpips package). A missing one is a one-line
        ``FileNotFoundError`` naming it.
    normalize : {"max_abs", "quantile", None}
        ``"max_abs"`` is the paper's (module docstring).
    upsample_to : int, optional
        Bilinear resize to ``upsample_to`` px first (e.g. 64, so relu3-5 are 3x3, not 1x1).
    """
    a, b = _check_pair(a, b)
    if a.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS needs 1- or 3-channel images, got {a.shape[1]} channels")
    net = model if model is not None else LPIPSAlexNet(backbone_path, linear_path)
    na, nb = normalize_images(a, normalize), normalize_images(b, normalize)
    if upsample_to is not None:
        na = F.interpolate(na, size=(upsample_to, upsample_to), mode="bilinear", align_corners=False)
        nb = F.interpolate(nb, size=(upsample_to, upsample_to), mode="bilinear", align_corners=False)
    if min(na.shape[-2:]) < LPIPS_MIN_SIZE:
        raise ValueError(f"LPIPS-AlexNet needs images of at least {LPIPS_MIN_SIZE} px (its pooling leaves "
                         f"nothing of {list(na.shape[-2:])}); pass upsample_to=32 or 64")
    if na.shape[1] == 1:
        na, nb = na.expand(-1, 3, -1, -1), nb.expand(-1, 3, -1, -1)
    net = net.to(device=na.device, dtype=na.dtype)
    with torch.no_grad():
        return 1.0 - net(na, nb)
