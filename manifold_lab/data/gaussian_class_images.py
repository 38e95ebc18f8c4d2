"""Gaussian classes on images: an exact class-conditional image law with an unsaturated posterior.

Validation data for the learned class-conditional score and Bayes gradient
(:meth:`manifold_lab.learned.ScoreModel.bayes_gradient`). Every class is a Gaussian
on ``d = c h w`` pixels,

    x | y ~ N(mu_y, Sigma_y + tau^2 I),   mu_y = b + B m_y,   Sigma_y = B diag(lam_y) B^T,

with one orthonormal frame ``B [d, k]`` of images shared by all classes:

- ``shared_dim`` smooth global patterns (random mixtures of the lowest-frequency
  2-D cosines) with the same variances in every class: the shape variation all
  classes share;
- ``bump_dim`` localised Gaussian bumps per class (orthonormalised against the
  rest): along its own bumps class ``y`` has mean ``bump_amplitude`` (first bump)
  and variance ``bump_std_own^2``, along the other classes' bumps mean 0 and
  variance ``bump_std_other^2``.

So the classes share their mean image ``b`` up to small bumps and differ by
low-rank covariances, and (with the defaults) the posterior is far from 0/1 at the
noise levels a denoiser is trained on. In frame coordinates ``a = B^T (x - b)``
every class is axis-aligned, ``N(m_y, diag(lam_y + tau^2))``, and the rest
``w_perp = (I - B B^T)(x - b)`` is ``N(0, tau^2 I)`` for every class:

    log p(x | c) = -|w_perp|^2 / (2 tau^2) - (d - k) log(2 pi tau^2) / 2
                   - sum_j [ (a_j - m_cj)^2 / V_cj + log(2 pi V_cj) ] / 2,   V_c = lam_c + tau^2
    grad log p(x | c) = -w_perp / tau^2 - B (a - m_c) / V_c.

Smoothing by ``N(0, sigma^2 I)`` keeps every class Gaussian with ``tau^2 -> tau^2 + sigma^2``
(:meth:`GaussianClassImages.smoothed`), so the smoothed class scores
``s_sigma(x | y)``, the smoothed score and ``grad log p_sigma(y | x) = s_sigma(x | y) - s_sigma(x)``
are closed forms too (:mod:`manifold_lab.data.smoothed`). The noise-free data lie
in the affine subspace ``b + span(B)`` (:attr:`manifold`).
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch

from manifold_lab._validation import check_positive, check_positive_int
from manifold_lab.data._directions import random_orthonormal
from manifold_lab.data.base import ClassTerms, Distribution
from manifold_lab.data.masked_images import POOL_FACTOR, _cosine_patterns
from manifold_lab.manifolds import AffineSubspace

__all__ = ["GaussianClassImages"]

#: Standard deviation of the Gaussian bumps in pixels: about a stroke width of a
#: 28x28 digit, so a bump is a local, visible change of the shared mean image.
BUMP_WIDTH_PX = 2.0
#: Bump centres keep this many pixels from the border, so no bump is cut off.
BUMP_MARGIN_PX = 4
#: The shared variances fall geometrically from ``shared_std^2`` by this factor per
#: pattern (a smooth, decaying spectrum, as natural images have).
SHARED_DECAY = 0.8
#: Relative singular-value floor of the frame before orthonormalisation: below it a
#: bump is (almost) a combination of the other directions.
FRAME_TOLERANCE = 1e-6


def _base_image(shape: tuple[int, int, int], background: float, contrast: float) -> torch.Tensor:
    """The shared mean image ``b``: a ring (a "digit-like" stroke) on a constant background, ``[d]``."""
    c, h, w = shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    r = torch.sqrt((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2)
    ring = torch.exp(-0.5 * ((r - min(h, w) / 4) / BUMP_WIDTH_PX) ** 2)
    return (background + contrast * ring).expand(c, h, w).flatten()


def _bumps(shape: tuple[int, int, int], n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` unit-norm Gaussian bumps at seeded random positions (one random channel each), ``[d, n]``."""
    c, h, w = shape
    if h <= 2 * BUMP_MARGIN_PX or w <= 2 * BUMP_MARGIN_PX:
        raise ValueError(f"images of {h}x{w} pixels are too small for bumps; use at least "
                         f"{2 * BUMP_MARGIN_PX + 1}x{2 * BUMP_MARGIN_PX + 1}")
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    cols = []
    for _ in range(n):
        cy = BUMP_MARGIN_PX + float(torch.rand((), generator=generator, dtype=torch.float64)) * (h - 1 - 2 * BUMP_MARGIN_PX)
        cx = BUMP_MARGIN_PX + float(torch.rand((), generator=generator, dtype=torch.float64)) * (w - 1 - 2 * BUMP_MARGIN_PX)
        ch = int(torch.randint(c, (), generator=generator))
        img = torch.zeros(c, h, w, dtype=torch.float64)
        img[ch] = torch.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2) / BUMP_WIDTH_PX ** 2)
        cols.append(img.flatten() / img.norm())
    return torch.stack(cols, dim=1)


class GaussianClassImages(Distribution):
    """Gaussian classes on images that share their mean up to small bumps (module docstring).

    Parameters
    ----------
    image_shape : (c, h, w)
        Image size, ``h, w >= 9``; ``ambient_dim = c h w``.
    n_classes : int
        ``C >= 2``.
    shared_dim : int
        Smooth patterns of shape variation shared by all classes (``>= 0``).
    bump_dim : int
        Bumps per class (``>= 1``); ``shared_dim + C bump_dim < d``.
    noise_std : float
        ``tau`` > 0, per-pixel noise.
    shared_std : float
        Standard deviation along the first shared pattern (unit-norm image); the
        others fall by ``SHARED_DECAY`` in variance per pattern.
    bump_amplitude : float
        Mean of class ``y`` along its first bump (unit-norm image), the class signal
        in the mean.
    bump_std_own, bump_std_other : float
        Standard deviation along a class's own bumps and along the other classes'
        bumps (> 0): the class signal in the covariance.
    background, contrast : float
        The shared mean image is ``background + contrast * ring``.
    seed : int
        Fixes the patterns and the bump positions.
    class_probs : sequence of float, optional
        Prior (uniform by default).
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        *,
        n_classes: int = 4,
        shared_dim: int = 8,
        bump_dim: int = 2,
        noise_std: float = 0.05,
        shared_std: float = 2.0,
        bump_amplitude: float = 0.2,
        bump_std_own: float = 0.2,
        bump_std_other: float = 0.1,
        background: float = 0.1,
        contrast: float = 0.6,
        seed: int = 0,
        class_probs: Sequence[float] | None = None,
    ) -> None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (c, h, w) with positive sizes, got {tuple(image_shape)}")
        d = math.prod(shape)
        c = check_positive_int("n_classes", n_classes, minimum=2)
        ks = check_positive_int("shared_dim", shared_dim, minimum=0)
        kb = check_positive_int("bump_dim", bump_dim)
        k = ks + c * kb
        if k >= d:
            raise ValueError(f"shared_dim + n_classes * bump_dim must be < {d} pixels so that noise has "
                             f"directions of its own, got {ks} + {c} * {kb} = {k}")
        for name, v in (("noise_std", noise_std), ("shared_std", shared_std), ("bump_std_own", bump_std_own),
                        ("bump_std_other", bump_std_other)):
            check_positive(name, v)
        for name, v in (("bump_amplitude", bump_amplitude), ("background", background), ("contrast", contrast)):
            if not math.isfinite(float(v)):
                raise ValueError(f"{name} must be finite, got {v}")
        super().__init__(d, c, class_probs)
        gen = torch.Generator().manual_seed(int(seed))
        region = torch.ones(shape, dtype=torch.bool)
        pool = _cosine_patterns(region, min(d, POOL_FACTOR * max(ks, 1)))
        shared = torch.linalg.qr(pool)[0] @ random_orthonormal(pool.shape[1], ks, gen) if ks else pool[:, :0]
        raw = torch.cat([shared, _bumps(shape, c * kb, gen)], dim=1)
        q, r = torch.linalg.qr(raw)
        diag = r.diagonal().abs()
        if bool((diag < FRAME_TOLERANCE * diag.max()).any()):
            raise ValueError("two bumps (or a bump and the shared patterns) nearly coincide; use another seed "
                             "or fewer bumps")
        # Sign fix: each direction keeps the orientation of the raw pattern it came from.
        self.frame = q * torch.sign(r.diagonal())
        means = torch.zeros(c, k, dtype=torch.float64)
        variances = torch.empty(c, k, dtype=torch.float64)
        variances[:, :ks] = shared_std ** 2 * SHARED_DECAY ** torch.arange(ks, dtype=torch.float64)
        variances[:, ks:] = bump_std_other ** 2
        for cls in range(c):
            own = slice(ks + cls * kb, ks + (cls + 1) * kb)
            variances[cls, own] = bump_std_own ** 2
            means[cls, own.start] = bump_amplitude
        self.class_means, self.class_variances = means, variances
        self.offset = _base_image(shape, float(background), float(contrast))
        self.image_shape = shape
        self.noise_std = float(noise_std)
        self.shared_dim, self.bump_dim, self.seed = ks, kb, int(seed)
        self._settings = dict(n_classes=c, shared_dim=ks, bump_dim=kb, shared_std=float(shared_std),
                              bump_amplitude=float(bump_amplitude), bump_std_own=float(bump_std_own),
                              bump_std_other=float(bump_std_other), background=float(background),
                              contrast=float(contrast), seed=int(seed))
        self._manifold = None

    # ---- exact structure ---------------------------------------------------------
    @property
    def frame_dim(self) -> int:
        """``k = shared_dim + n_classes * bump_dim``."""
        return self.frame.shape[1]

    @property
    def class_means_ambient(self) -> torch.Tensor:
        """``mu_c = b + B m_c``, Tensor, shape [C, d] (float64)."""
        return self.offset + self.class_means @ self.frame.T

    def class_covariances(self, extra_var: float = 0.0) -> torch.Tensor:
        """Dense ``Sigma_c + (tau^2 + extra_var) I``, Tensor, shape [C, d, d] (float64; for checks, it is big)."""
        eye = torch.eye(self.ambient_dim, dtype=torch.float64)
        return torch.stack([(self.frame * lam) @ self.frame.T for lam in self.class_variances]) + \
            (self.noise_std ** 2 + extra_var) * eye

    def smoothed(self, sigma: float) -> "GaussianClassImages":
        """The law of ``x + sigma eps``: the same classes with noise ``sqrt(tau^2 + sigma^2)``."""
        sigma = float(sigma)
        if not math.isfinite(sigma) or sigma < 0:
            raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
        # A shallow copy shares the (read-only) frame, means and variances: no rebuild per level.
        law = copy.copy(self)
        law.noise_std = math.hypot(self.noise_std, sigma)
        return law

    @property
    def manifold(self):
        """The affine span ``b + span(B)`` that holds every class's noise-free data (``AffineSubspace``)."""
        if self._manifold is None:
            self._manifold = AffineSubspace.from_frame(self.frame, offset=self.offset)
        return self._manifold

    @property
    def ambient_shape(self) -> tuple[int, int, int]:
        return self.image_shape

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape ``[..., d]`` points to ``[..., c, h, w]`` images."""
        return x.reshape(*x.shape[:-1], *self.image_shape)

    # ---- Distribution hooks ------------------------------------------------------
    def _terms(self, x: torch.Tensor, *, with_score: bool) -> ClassTerms:
        kw = dict(dtype=x.dtype, device=x.device)
        frame, offset = self.frame.to(**kw), self.offset.to(**kw)
        means, var = self.class_means.to(**kw), self.class_variances.to(**kw) + self.noise_std ** 2
        v_n = self.noise_std ** 2
        w = x - offset
        a = w @ frame                                   # [..., k]
        w_perp = w - a @ frame.T                        # explicit, not |w|^2 - |a|^2 (cancellation)
        shared_log = (-0.5 * w_perp.square().sum(-1) / v_n
                      - 0.5 * (self.ambient_dim - self.frame_dim) * math.log(2 * math.pi * v_n))
        diff = a.unsqueeze(-2) - means                  # [..., C, k]
        class_log = -0.5 * (diff.square() / var + torch.log(2 * math.pi * var)).sum(-1)
        if not with_score:
            return ClassTerms(shared_log, class_log)
        return ClassTerms(shared_log, class_log, -w_perp / v_n, -diff / var, frame)

    def _sample(self, n, generator, dtype, device, on_manifold):
        # Drawn in float64 and cast (same points in every dtype); the noise is drawn
        # in both modes so on_manifold=True gives the same labels and latents.
        kw = dict(dtype=torch.float64, device=device)
        y = self._sample_labels(n, generator, device)
        frame, offset = self.frame.to(device), self.offset.to(device)
        means, std = self.class_means.to(device), self.class_variances.to(device).sqrt()
        z = torch.randn(n, self.frame_dim, generator=generator, **kw)
        eps = torch.randn(n, self.ambient_dim, generator=generator, **kw)
        m = offset + (means[y] + std[y] * z) @ frame.T
        return (m if on_manifold else m + self.noise_std * eps).to(dtype), y

    def __repr__(self) -> str:
        s = self._settings
        return (f"GaussianClassImages(image_shape={self.image_shape}, n_classes={self.n_classes}, "
                f"shared_dim={s['shared_dim']}, bump_dim={s['bump_dim']}, noise_std={self.noise_std:g})")
