"""Coordinate-mask signal–distractor images (docs/theory.md, Definition 3).

Images of shape ``[c, h, w]`` (flattened to ``d = c h w`` coordinates, as every
``Distribution`` works on ``[..., d]``) whose pixels split by a boolean ``mask``:

- **signal pixels** (``mask`` True) carry the label: a smooth class template plus
  a smooth random field, ``S (m_y + tau_s z_s)``;
- **distractor pixels** (``mask`` False) carry a smooth random field independent
  of the label and of the signal, ``D tau_d z_d``;
- every pixel gets independent noise ``sigma eps`` around a constant ``background``.

``S [d, ks]`` and ``D [d, kd]`` are orthonormal sets of smooth images supported on
the signal and distractor pixels respectively, so ``S^T D = 0`` exactly and the
model is a :class:`LinearSignalDistractor` (exact density and posterior there).
Because the posterior depends on ``x`` only through ``S^T (x - background)`` and
``S`` vanishes on distractor pixels, ``log p(y | x)`` is bit-for-bit unchanged by
*any* change of the distractor pixels, and ``grad_x log p(y | x)`` is exactly zero on
them (Theorem 3.2 for a coordinate mask).

Smooth images: the lowest-frequency 2-D cosine (DCT-II) patterns of each channel
on the region's bounding box, restricted to the region, orthonormalised and
mixed by a seeded random rotation.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from manifold_lab._validation import check_positive, check_positive_int
from manifold_lab.data._directions import class_centres, random_orthonormal
from manifold_lab.data.gaussian_signal_distractor import LinearSignalDistractor

__all__ = ["MaskedImageSignalDistractor", "central_square_mask"]

#: Smooth patterns are random mixtures of the ``POOL_FACTOR * k`` lowest-frequency
#: cosines restricted to the region: enough variety for random mixing, all smooth.
POOL_FACTOR = 3
#: A region whose restricted pattern pool has a singular value below this (relative
#: to the largest) cannot hold ``k`` independent smooth images.
RANK_TOLERANCE = 1e-8


def central_square_mask(image_shape: Sequence[int]) -> torch.Tensor:
    """Boolean ``[c, h, w]`` mask: True on the central ``ceil(h/2) x ceil(w/2)`` square."""
    c, h, w = image_shape
    mask = torch.zeros(c, h, w, dtype=torch.bool)
    sh, sw = math.ceil(h / 2), math.ceil(w / 2)
    top, left = (h - sh) // 2, (w - sw) // 2
    mask[:, top:top + sh, left:left + sw] = True
    return mask


def _cosine_patterns(region: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` lowest-frequency DCT-II patterns of the region's bounding box, ``[c h w, n]``.

    ``region`` is a bool ``[c, h, w]``; patterns are ordered by ``u + v``, then
    channel, and are zero outside the (per-image) bounding box of the region.
    """
    c, h, w = region.shape
    rows = torch.nonzero(region.any(dim=(0, 2))).flatten()
    cols = torch.nonzero(region.any(dim=(0, 1))).flatten()
    top, bh = int(rows[0]), int(rows[-1]) - int(rows[0]) + 1
    left, bw = int(cols[0]), int(cols[-1]) - int(cols[0]) + 1
    freqs = sorted(((u, v) for u in range(bh) for v in range(bw)), key=lambda f: (f[0] + f[1], f))
    ih = torch.arange(bh, dtype=torch.float64)
    iw = torch.arange(bw, dtype=torch.float64)
    cols_out = []
    for u, v in freqs:
        patch = torch.outer(torch.cos(math.pi * (2 * ih + 1) * u / (2 * bh)),
                            torch.cos(math.pi * (2 * iw + 1) * v / (2 * bw)))
        for ch in range(c):
            img = torch.zeros(c, h, w, dtype=torch.float64)
            img[ch, top:top + bh, left:left + bw] = patch
            cols_out.append(img.flatten())
            if len(cols_out) == n:
                return torch.stack(cols_out, dim=1)
    return torch.stack(cols_out, dim=1)


class MaskedImageSignalDistractor(LinearSignalDistractor):
    """Images whose masked pixels carry the label and whose other pixels distract.

    Parameters
    ----------
    image_shape : (c, h, w)
        Image size; ``ambient_dim = c h w``.
    n_classes : int
        ``C >= 2``.
    signal_dim, distractor_dim : int
        Number of smooth patterns ``ks >= 1`` on the signal pixels and ``kd >= 0``
        on the distractor pixels.
    noise_std : float
        Per-pixel noise ``sigma`` > 0.
    seed : int
        Fixes the pattern mixing and the class templates.
    mask : bool Tensor, shape [c, h, w] or [h, w], optional
        True on signal pixels (broadcast over channels if ``[h, w]``); by default
        :func:`central_square_mask` (object in the middle, distracting surround).
    signal_std, distractor_std : float
        ``tau_s``, ``tau_d`` > 0 (in units of unit-norm images).
    class_separation : float
        Distance between the closest two class templates (as for
        ``GaussianSignalDistractor``).
    background : float
        Constant grey level every image is centred on.
    class_probs : sequence of float, optional
        Prior (uniform by default).
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        *,
        n_classes: int = 2,
        signal_dim: int = 8,
        distractor_dim: int = 8,
        noise_std: float = 0.05,
        seed: int = 0,
        mask: torch.Tensor | None = None,
        signal_std: float = 1.0,
        distractor_std: float = 2.0,
        class_separation: float = 3.0,
        background: float = 0.5,
        class_probs: Sequence[float] | None = None,
    ) -> None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (c, h, w) with positive sizes, got {tuple(image_shape)}")
        ks = check_positive_int("signal_dim", signal_dim)
        kd = check_positive_int("distractor_dim", distractor_dim, minimum=0)
        c = check_positive_int("n_classes", n_classes, minimum=2)
        check_positive("class_separation", class_separation)
        if not math.isfinite(float(background)):
            raise ValueError(f"background must be finite, got {background}")
        if mask is None:
            mask = central_square_mask(shape)
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True = signal pixel), got dtype {mask.dtype}")
        if mask.shape == shape[1:]:
            mask = mask.expand(shape)
        if tuple(mask.shape) != shape:
            raise ValueError(f"mask must have shape {list(shape)} or {list(shape[1:])}, got {list(mask.shape)}")
        mask = mask.detach().to("cpu").clone()
        gen = torch.Generator().manual_seed(int(seed))
        flat = mask.flatten()
        s = self._region_basis(shape, flat, ks, gen, "signal")
        dd = self._region_basis(shape, ~flat, kd, gen, "distractor")
        means = class_centres(c, ks, float(class_separation), gen)
        offset = torch.full((flat.numel(),), float(background), dtype=torch.float64)
        super().__init__(s, dd, means, offset=offset, signal_std=signal_std, distractor_std=distractor_std,
                         noise_std=noise_std, class_probs=class_probs)
        self.image_shape = shape
        self.mask = mask
        self.seed = int(seed)
        self.background = float(background)

    @staticmethod
    def _region_basis(shape, region: torch.Tensor, k: int, generator: torch.Generator, name: str) -> torch.Tensor:
        """``[d, k]`` orthonormal smooth images supported exactly on the flat bool ``region``."""
        size = int(region.sum())
        if k > size:
            raise ValueError(f"{name}_dim={k} exceeds the {size} {name} pixels; use a smaller {name}_dim "
                             "or a different mask")
        d = region.numel()
        if k == 0:
            return torch.zeros(d, 0, dtype=torch.float64)
        n_cos = min(d, POOL_FACTOR * k)
        restricted = _cosine_patterns(region.reshape(shape), n_cos)[region]  # [size, n_cos]
        # An orthonormal basis of the restricted low-frequency cosines (their span
        # may lose rank on a small or thin region).
        u, sing, _ = torch.linalg.svd(restricted, full_matrices=False)
        rank = int((sing > RANK_TOLERANCE * sing[0]).sum())
        if rank < k:
            raise ValueError(f"the {name} region holds only {rank} independent smooth patterns, "
                             f"fewer than {name}_dim={k}; use a larger region or a smaller {name}_dim")
        pool = u[:, :rank]
        local = pool @ random_orthonormal(pool.shape[1], k, generator)  # [size, k], orthonormal
        basis = torch.zeros(d, k, dtype=torch.float64)
        basis[region] = local
        return basis

    @property
    def ambient_shape(self) -> tuple[int, int, int]:
        return self.image_shape

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape ``[..., d]`` points to ``[..., c, h, w]`` images."""
        return x.reshape(*x.shape[:-1], *self.image_shape)

    def class_templates(self) -> torch.Tensor:
        """Mean image of each class, Tensor, shape [C, c, h, w] (float64)."""
        return self.class_means_ambient.reshape(self.n_classes, *self.image_shape)

    def __repr__(self) -> str:
        return (f"MaskedImageSignalDistractor(image_shape={self.image_shape}, n_classes={self.n_classes}, "
                f"signal_dim={self.signal_dim}, distractor_dim={self.distractor_dim}, noise_std={self.noise_std})")
