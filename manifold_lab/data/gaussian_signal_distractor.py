"""Gaussian signal–distractor data (docs/theory.md, Definition 3 and Theorem 3.2).

The exact model, for orthonormal signal directions ``S [d, ks]`` and distractor
directions ``D [d, kd]`` with ``S^T D = 0``:

    y ~ pi,   s | y ~ N(m_y, tau_s^2 I_ks),   t ~ N(0, tau_d^2 I_kd),   eps ~ N(0, I_d)
    x = b + S s + D t + sigma eps

The distractor ``t`` and the noise are independent of ``(s, y)``. With ``w = x - b``,
``a = S^T w``, ``v_s = tau_s^2 + sigma^2``, ``v_d = tau_d^2 + sigma^2``,
``P_N = I - S S^T - D D^T`` and ``n = d - ks - kd``:

    log p(x | c) = -|a - m_c|^2 / (2 v_s) - |D^T w|^2 / (2 v_d) - |P_N w|^2 / (2 sigma^2)
                   - (ks log(2 pi v_s) + kd log(2 pi v_d) + n log(2 pi sigma^2)) / 2

Only the first term depends on the class, so (Theorem 3.2)

    log p(c | x)      = log_softmax_c( (a^T m_c - |m_c|^2 / 2) / v_s + log pi_c )
    grad log p(y | x) = S (m_y - sum_c p(c | x) m_c) / v_s,

which lies in the signal span: its distractor and normal components vanish, and
the posterior does not change when ``x`` moves by any amount along ``D`` (or along
the normal space). The data manifold is the affine span ``b + span(S, D)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from manifold_lab._validation import check_finite, check_positive, check_positive_int
from manifold_lab.data._directions import class_centres, random_orthonormal
from manifold_lab.data.base import ClassTerms, Distribution
from manifold_lab.manifolds import AffineSubspace

__all__ = ["LinearSignalDistractor", "GaussianSignalDistractor"]

#: Largest allowed deviation of ``[S, D]^T [S, D]`` from the identity: bases are
#: built in float64 (error ~1e-15); a float32 basis (~1e-7) also passes.
ORTHONORMALITY_TOLERANCE = 1e-5


class LinearSignalDistractor(Distribution):
    """Signal–distractor data on given orthonormal signal and distractor directions.

    Parameters
    ----------
    signal_basis : Tensor, shape [d, ks]
        Orthonormal columns ``S`` (``ks >= 1``).
    distractor_basis : Tensor, shape [d, kd]
        Orthonormal columns ``D`` orthogonal to ``S`` (``kd >= 0``, ``ks + kd < d``).
    class_means : Tensor, shape [C, ks]
        Signal-coordinate means ``m_c`` (``C >= 2``).
    offset : Tensor, shape [d], optional
        ``b`` (zero by default).
    signal_std, distractor_std : float
        ``tau_s``, ``tau_d`` > 0.
    noise_std : float
        ``sigma`` > 0, isotropic off-manifold noise in ``R^d``.
    class_probs : sequence of float, optional
        Prior ``pi`` (uniform by default).

    Notes
    -----
    The exact model and its posterior are in the module docstring. Parameters
    are stored in float64 on the CPU and cast to the input's dtype/device.
    """

    def __init__(
        self,
        signal_basis: torch.Tensor,
        distractor_basis: torch.Tensor,
        class_means: torch.Tensor,
        *,
        offset: torch.Tensor | None = None,
        signal_std: float = 1.0,
        distractor_std: float = 1.0,
        noise_std: float = 0.1,
        class_probs: Sequence[float] | None = None,
    ) -> None:
        s = torch.as_tensor(signal_basis).detach().to("cpu", torch.float64)
        dd = torch.as_tensor(distractor_basis).detach().to("cpu", torch.float64)
        means = torch.as_tensor(class_means).detach().to("cpu", torch.float64)
        if s.ndim != 2 or s.shape[1] < 1:
            raise ValueError(f"signal_basis must have shape [d, ks] with ks >= 1, got {list(s.shape)}")
        d = s.shape[0]
        if dd.ndim == 1 and dd.numel() == 0:
            dd = dd.reshape(d, 0)
        if dd.ndim != 2 or dd.shape[0] != d:
            raise ValueError(f"distractor_basis must have shape [{d}, kd], got {list(dd.shape)}")
        ks, kd = s.shape[1], dd.shape[1]
        if ks + kd >= d:
            raise ValueError(f"signal_dim + distractor_dim must be < ambient_dim so that noise has "
                             f"off-manifold directions, got {ks} + {kd} >= {d}")
        if means.ndim != 2 or means.shape[1] != ks:
            raise ValueError(f"class_means must have shape [C, {ks}], got {list(means.shape)}")
        for name, t in (("signal_basis", s), ("distractor_basis", dd), ("class_means", means)):
            check_finite(name, t)
        frame = torch.cat([s, dd], dim=1)
        gram_err = (frame.T @ frame - torch.eye(ks + kd, dtype=torch.float64)).abs().max().item()
        if gram_err > ORTHONORMALITY_TOLERANCE:
            raise ValueError(f"[signal_basis, distractor_basis] must have orthonormal columns; "
                             f"max |F^T F - I| = {gram_err:.2e}")
        for name, v in (("signal_std", signal_std), ("distractor_std", distractor_std), ("noise_std", noise_std)):
            check_positive(name, v)
        super().__init__(d, means.shape[0], class_probs)
        if offset is None:
            offset = torch.zeros(d, dtype=torch.float64)
        offset = torch.as_tensor(offset).detach().to("cpu", torch.float64)
        if offset.shape != (d,):
            raise ValueError(f"offset must have shape [{d}], got {list(offset.shape)}")
        check_finite("offset", offset)
        self.signal_basis = s
        self.distractor_basis = dd
        self.class_means = means
        self.offset = offset
        self.signal_std = float(signal_std)
        self.distractor_std = float(distractor_std)
        self.noise_std = float(noise_std)
        self._manifold = None

    @property
    def signal_dim(self) -> int:
        return self.signal_basis.shape[1]

    @property
    def distractor_dim(self) -> int:
        return self.distractor_basis.shape[1]

    @property
    def class_means_ambient(self) -> torch.Tensor:
        """``b + S m_c``, Tensor, shape [C, d], the class means in ``R^d``."""
        return self.offset + self.class_means @ self.signal_basis.T

    @property
    def manifold(self):
        """The affine span ``b + span(S, D)`` (an ``AffineSubspace``)."""
        if self._manifold is None:
            frame = torch.cat([self.signal_basis, self.distractor_basis], dim=1)
            self._manifold = AffineSubspace.from_frame(frame, offset=self.offset)
        return self._manifold

    def _params(self, ref: torch.Tensor):
        kw = dict(dtype=ref.dtype, device=ref.device)
        return (self.signal_basis.to(**kw), self.distractor_basis.to(**kw),
                self.class_means.to(**kw), self.offset.to(**kw))

    def _terms(self, x: torch.Tensor, *, with_score: bool) -> ClassTerms:
        s, dd, means, offset = self._params(x)
        v_s = self.signal_std**2 + self.noise_std**2
        v_d = self.distractor_std**2 + self.noise_std**2
        v_n = self.noise_std**2
        d, ks, kd = self.ambient_dim, self.signal_dim, self.distractor_dim
        w = x - offset
        a = w @ s
        b = w @ dd
        w_perp = w - a @ s.T - b @ dd.T  # explicit, not |w|^2 - |a|^2 - |b|^2 (cancellation)
        log_norm = 0.5 * (ks * math.log(2 * math.pi * v_s) + kd * math.log(2 * math.pi * v_d)
                          + (d - ks - kd) * math.log(2 * math.pi * v_n))
        shared_log = (-0.5 * (a.square().sum(-1) / v_s + b.square().sum(-1) / v_d
                              + w_perp.square().sum(-1) / v_n) - log_norm)
        class_log = (a @ means.T - 0.5 * means.square().sum(-1)) / v_s
        if not with_score:
            return ClassTerms(shared_log, class_log)
        shared_score = -(a @ s.T) / v_s - (b @ dd.T) / v_d - w_perp / v_n
        class_coef = (means / v_s).expand(*x.shape[:-1], self.n_classes, ks)
        return ClassTerms(shared_log, class_log, shared_score, class_coef, s)

    def _sample(self, n, generator, dtype, device, on_manifold):
        # Drawn in float64 and cast, so one generator state gives the same points in
        # every dtype; every variable is drawn in both modes so that on_manifold=True
        # returns the same labels and latents without the noise.
        kw = dict(dtype=torch.float64, device=device)
        y = self._sample_labels(n, generator, device)
        s, dd, means, offset = (t.to(device) for t in (self.signal_basis, self.distractor_basis,
                                                      self.class_means, self.offset))
        z_s = torch.randn(n, self.signal_dim, generator=generator, **kw)
        z_d = torch.randn(n, self.distractor_dim, generator=generator, **kw)
        eps = torch.randn(n, self.ambient_dim, generator=generator, **kw)
        latent_s = means[y] + self.signal_std * z_s
        m = offset + latent_s @ s.T + (self.distractor_std * z_d) @ dd.T
        return (m if on_manifold else m + self.noise_std * eps).to(dtype), y

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(signal_dim={self.signal_dim}, distractor_dim={self.distractor_dim}, "
                f"ambient_dim={self.ambient_dim}, n_classes={self.n_classes}, noise_std={self.noise_std})")


class GaussianSignalDistractor(LinearSignalDistractor):
    """Signal–distractor data in random complementary subspaces (exact model above).

    Parameters
    ----------
    signal_dim, distractor_dim, ambient_dim : int
        ``ks >= 1``, ``kd >= 0``, ``d > ks + kd``.
    n_classes : int
        ``C >= 2``.
    noise_std : float
        ``sigma`` > 0.
    seed : int
        Fixes the geometry: ``[S, D]`` are the first ``ks + kd`` columns of a
        Haar-random orthonormal matrix and the class means are rotated at random,
        both from ``torch.Generator().manual_seed(seed)``.
    signal_std, distractor_std : float
        ``tau_s``, ``tau_d`` > 0 (default 1).
    class_separation : float
        Distance between the two closest class means ``m_c`` in signal
        coordinates: the means form a regular simplex (all pairs exactly this far
        apart) when ``C <= ks + 1``, equally spaced points when ``ks == 1``,
        otherwise well-spread points (see ``_directions.class_centres``). The
        offset ``b`` is 0, so with a uniform prior the data have mean 0.
    class_probs : sequence of float, optional
        Prior (uniform by default).
    """

    def __init__(
        self,
        signal_dim: int,
        distractor_dim: int,
        ambient_dim: int,
        *,
        n_classes: int = 2,
        noise_std: float = 0.1,
        seed: int = 0,
        signal_std: float = 1.0,
        distractor_std: float = 1.0,
        class_separation: float = 3.0,
        class_probs: Sequence[float] | None = None,
    ) -> None:
        ks = check_positive_int("signal_dim", signal_dim)
        kd = check_positive_int("distractor_dim", distractor_dim, minimum=0)
        d = check_positive_int("ambient_dim", ambient_dim)
        c = check_positive_int("n_classes", n_classes, minimum=2)
        check_positive("class_separation", class_separation)
        if ks + kd >= d:
            raise ValueError(f"signal_dim + distractor_dim must be < ambient_dim, got {ks} + {kd} >= {d}")
        gen = torch.Generator().manual_seed(int(seed))
        frame = random_orthonormal(d, ks + kd, gen)
        means = class_centres(c, ks, float(class_separation), gen)
        super().__init__(frame[:, :ks], frame[:, ks:], means, signal_std=signal_std,
                         distractor_std=distractor_std, noise_std=noise_std, class_probs=class_probs)
        self.seed = int(seed)
        self.class_separation = float(class_separation)
