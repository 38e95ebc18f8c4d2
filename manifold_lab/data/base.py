"""The interface every exact distribution implements.

A :class:`Distribution` is a labelled mixture ``p(x) = sum_c pi_c p(x | c)`` on
``R^d`` whose class-conditional log-densities and their input gradients are known
in closed form. Everything the rest of the project needs follows from two
quantities per class, which subclasses provide through :meth:`Distribution._terms`:

    log p(x | c)         = L0(x) + L_c(x)
    grad_x log p(x | c)  = G0(x) + B g_c(x)

where ``L0, G0`` are shared by all classes, ``L_c`` and the coefficients ``g_c`` (in a
fixed ``[d, m]`` basis ``B`` of the directions the classes differ along) are
class-specific.
The split is what makes posteriors exact in floating point: the Bayes posterior
``log p(c | x) = log_softmax_c(L_c + log pi_c)`` and its gradient
``grad_x log p(y | x) = B (g_y - sum_c p(c | x) g_c)`` never form the (possibly huge,
e.g. ``|x - m|^2 / (2 sigma^2)``) shared terms, so they cannot lose precision to
their cancellation, a shared term that is infinite in extent (an arbitrarily
large distractor) leaves them untouched (Theorem 3.2), and the classes are
combined in the coefficients before ``B`` maps them to ``R^d``, so directions
orthogonal to ``B`` get nothing but ``B``'s own rounding.
"""

from __future__ import annotations

import abc
import math
from typing import NamedTuple, Sequence

import torch

from manifold_lab._validation import (
    check_finite,
    check_float_dtype,
    check_generator,
    check_last_dim,
    check_positive,
    check_positive_int,
)

__all__ = ["Distribution", "ClassTerms"]


class ClassTerms(NamedTuple):
    """Shared and class-specific parts of ``log p(x | c)`` and its gradient.

    Attributes
    ----------
    shared_log : Tensor, shape [...]
    class_log : Tensor, shape [..., C]
    shared_score : Tensor, shape [..., d] or None (when scores were not requested)
    class_coef : Tensor, shape [..., C, m] or None
        Class-specific score coefficients ``g_c`` in the basis ``class_basis``.
    class_basis : Tensor, shape [d, m] or None
        ``B``; the class-specific score is ``class_coef @ class_basis.T``.
    """

    shared_log: torch.Tensor
    class_log: torch.Tensor
    shared_score: torch.Tensor | None = None
    class_coef: torch.Tensor | None = None
    class_basis: torch.Tensor | None = None


def uniform_or_given_log_prior(n_classes: int, class_probs: Sequence[float] | None) -> torch.Tensor:
    """``log pi`` as float64 ``[C]``: uniform, or the given probabilities (validated)."""
    if class_probs is None:
        return torch.full((n_classes,), -math.log(n_classes), dtype=torch.float64)
    probs = torch.as_tensor(class_probs, dtype=torch.float64).flatten()
    if probs.numel() != n_classes:
        raise ValueError(f"class_probs must have n_classes={n_classes} entries, got {probs.numel()}")
    check_positive("class_probs", probs)
    if abs(float(probs.sum()) - 1.0) > 1e-9:
        raise ValueError(f"class_probs must sum to 1, got sum {float(probs.sum())}")
    return probs.log()


class Distribution(abc.ABC):
    """A labelled distribution on ``R^d`` with exact densities, scores and posteriors.

    Attributes
    ----------
    ambient_dim : int
        ``d``.
    n_classes : int
        ``C >= 2``.
    manifold : manifold_lab.manifolds.Manifold
        The data manifold: its tangent spaces are the directions the noise-free
        data vary along (see each subclass).
    log_prior : Tensor, shape [C]
        ``log p(y = c)`` in float64 on the CPU (uniform unless the subclass was
        given ``class_probs``).

    Notes
    -----
    All methods accept ``x : Tensor, shape [..., d]`` of any float dtype on any
    device and return tensors of that dtype and device; they are differentiable
    by autograd. Scores are closed forms, not autograd.
    """

    ambient_dim: int
    n_classes: int

    def __init__(self, ambient_dim: int, n_classes: int, class_probs: Sequence[float] | None = None):
        self.ambient_dim = check_positive_int("ambient_dim", ambient_dim)
        self.n_classes = check_positive_int("n_classes", n_classes, minimum=2)
        self._log_prior = uniform_or_given_log_prior(self.n_classes, class_probs)

    # ---- subclass hooks --------------------------------------------------------
    @property
    @abc.abstractmethod
    def manifold(self):
        """The data manifold (a ``manifold_lab.manifolds.Manifold``)."""

    @abc.abstractmethod
    def _terms(self, x: torch.Tensor, *, with_score: bool) -> ClassTerms:
        """Shared/class-specific parts of ``log p(x|c)`` (and gradients if asked).

        ``x`` is already validated: finite, shape ``[..., d]``, floating point.
        """

    @abc.abstractmethod
    def _sample(
        self, n: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device, on_manifold: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(x [n, d], y [n])``; arguments already validated."""

    # ---- public API --------------------------------------------------------------
    @property
    def log_prior(self) -> torch.Tensor:
        """``log p(y = c)``, Tensor, shape [C], float64 on the CPU."""
        return self._log_prior.clone()

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        on_manifold: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw labelled samples.

        Parameters
        ----------
        n : int
            Number of samples (>= 1).
        generator : torch.Generator or None
            Source of randomness (on ``device``); ``None`` uses torch's default.
        dtype, device
            Of the returned points.
        on_manifold : bool
            If True return the noise-free points on :attr:`manifold` (the same
            draws of labels and latent variables, no off-manifold noise).

        Returns
        -------
        x : Tensor, shape [n, d]
        y : Tensor, shape [n], int64
            Labels drawn from the prior, ``x | y`` from the class-conditional law.
        """
        check_positive_int("n", n)
        device = torch.device(device)
        check_generator(generator, device)
        check_float_dtype("dtype", dtype)
        return self._sample(n, generator, dtype, device, bool(on_manifold))

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x | y = c)``: x ``[..., d]`` -> ``[..., C]``."""
        t = self._terms(self._check_x(x), with_score=False)
        return t.shared_log.unsqueeze(-1) + t.class_log

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x) = L0 + logsumexp_c(L_c + log pi_c)``: x ``[..., d]`` -> ``[...]``."""
        t = self._terms(self._check_x(x), with_score=False)
        return t.shared_log + torch.logsumexp(t.class_log + self._prior_like(t.class_log), dim=-1)

    def log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(y = c | x) = log_softmax_c(L_c + log pi_c)``: ``[..., d]`` -> ``[..., C]``."""
        t = self._terms(self._check_x(x), with_score=False)
        return torch.log_softmax(t.class_log + self._prior_like(t.class_log), dim=-1)

    def class_score(self, x: torch.Tensor) -> torch.Tensor:
        """``grad_x log p(x | y = c) = G0 + B g_c``: ``[..., d]`` -> ``[..., C, d]``."""
        t = self._terms(self._check_x(x), with_score=True)
        return t.shared_score.unsqueeze(-2) + t.class_coef @ t.class_basis.T

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """``grad_x log p(x) = G0 + B sum_c p(c | x) g_c``: ``[..., d]`` -> ``[..., d]``."""
        t = self._terms(self._check_x(x), with_score=True)
        post = torch.softmax(t.class_log + self._prior_like(t.class_log), dim=-1)
        return t.shared_score + (post.unsqueeze(-1) * t.class_coef).sum(-2) @ t.class_basis.T

    def posterior_grad(self, x: torch.Tensor, y: torch.Tensor | int) -> torch.Tensor:
        """``grad_x log p(y | x) = B (g_y - sum_c p(c | x) g_c)`` (= class_score[y] - score).

        Parameters
        ----------
        x : Tensor, shape [..., d]
        y : Tensor, shape [...] (int64, broadcastable to ``x.shape[:-1]``), or an int

        Returns
        -------
        Tensor, shape [..., d]
        """
        t = self._terms(self._check_x(x), with_score=True)
        post = torch.softmax(t.class_log + self._prior_like(t.class_log), dim=-1)
        y = self._check_labels(y, x)
        m = t.class_coef.shape[-1]
        coef = t.class_coef.expand(*x.shape[:-1], self.n_classes, m)
        idx = y.expand(x.shape[:-1])[..., None, None].expand(*x.shape[:-1], 1, m)
        own = torch.gather(coef, -2, idx).squeeze(-2)
        return (own - (post.unsqueeze(-1) * coef).sum(-2)) @ t.class_basis.T

    def posterior_grads(self, x: torch.Tensor) -> torch.Tensor:
        """``grad_x log p(c | x)`` for every class: ``[..., d]`` -> ``[..., C, d]``."""
        t = self._terms(self._check_x(x), with_score=True)
        post = torch.softmax(t.class_log + self._prior_like(t.class_log), dim=-1)
        mean = (post.unsqueeze(-1) * t.class_coef).sum(-2, keepdim=True)
        return (t.class_coef - mean) @ t.class_basis.T

    # ---- helpers -----------------------------------------------------------------
    def _prior_like(self, ref: torch.Tensor) -> torch.Tensor:
        return self._log_prior.to(dtype=ref.dtype, device=ref.device)

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        check_finite("x", x)
        check_last_dim("x", x, self.ambient_dim)
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        return x

    def _check_labels(self, y: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(y, device=x.device)
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
        y = y.to(torch.int64)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"labels y must lie in [0, {self.n_classes - 1}], got range "
                             f"[{int(y.min())}, {int(y.max())}]")
        try:
            ok = torch.broadcast_shapes(y.shape, x.shape[:-1]) == x.shape[:-1]
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"y of shape {list(y.shape)} does not broadcast to x.shape[:-1] = "
                             f"{list(x.shape[:-1])}")
        return y

    def _sample_labels(self, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        probs = self._log_prior.exp().to(device)
        return torch.multinomial(probs, n, replacement=True, generator=generator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ambient_dim={self.ambient_dim}, n_classes={self.n_classes})"
