"""Randomized smoothing: prediction and certified L2 radius (Cohen, Rosenfeld & Kolter 2019)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
from scipy import stats

from manifold_lab._validation import check_finite, check_generator, check_min_ndim, check_positive, check_positive_int
from manifold_lab.training._context import eval_mode

__all__ = ["SmoothedClassifier", "Certificate", "ABSTAIN", "DEFAULT_ALPHA"]

#: Label returned when the smoothed classifier abstains.
ABSTAIN = -1
#: Default failure probability of prediction and certification (Cohen et al.'s choice).
DEFAULT_ALPHA = 0.001
#: Noisy inputs per forward pass when counting votes.
DEFAULT_BATCH_SIZE = 1024


class Certificate(NamedTuple):
    """Result of :meth:`SmoothedClassifier.certify` (one entry per input)."""

    #: Tensor, shape [n], int64: the certified class, or ``ABSTAIN``.
    prediction: torch.Tensor
    #: Tensor, shape [n], float64: certified L2 radius ``σ Φ⁻¹(p_lower)`` (0 when abstaining).
    radius: torch.Tensor
    #: Tensor, shape [n], float64: one-sided ``1 − alpha`` lower bound on ``p_A``.
    p_lower: torch.Tensor


class SmoothedClassifier:
    r"""The smoothed classifier ``g(x) = argmax_c P(f(x + u) = c)``, ``u ~ N(0, σ² I)``.

    ``f(x) = argmax model(x)`` is the base classifier. If the top class has
    probability ``p_A ≥ p̲_A > 1/2`` then ``g`` is constant on the L2 ball of
    radius ``R = σ Φ⁻¹(p̲_A)`` (Cohen et al., Theorem 1, with ``p̲_B = 1 − p̲_A``).
    ``p̲_A`` is the exact one-sided Clopper–Pearson lower confidence bound,
    ``p̲_A = Beta⁻¹(α; n_A, n − n_A + 1)``, the ``p`` solving
    ``P(Bin(n, p) ≥ n_A) = α`` (scipy's beta quantile).

    Parameters
    ----------
    model : callable
        ``[m, *shape] -> [m, C]`` scores (logits); run in eval mode without gradients.
    noise_std : float
        ``σ`` > 0.
    n_samples : int
        Noise draws per input for :meth:`predict` and for the estimation step of
        :meth:`certify`.
    batch_size : int
        Noisy inputs per forward pass (memory bound only; results do not depend on it
        beyond floating-point rounding of the model).
    """

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], noise_std: float,
                 n_samples: int, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        check_positive("noise_std", noise_std)
        self.model = model
        self.noise_std = float(noise_std)
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.batch_size = check_positive_int("batch_size", batch_size)

    def class_counts(self, x: torch.Tensor, n: int, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Votes of the base classifier on ``n`` noisy copies of each input.

        Parameters
        ----------
        x : Tensor, shape [m, *shape]
        n : int
            Draws per input.
        generator : torch.Generator, optional
            On ``x``'s device.

        Returns
        -------
        Tensor, shape [m, C], int64
            ``counts[i, c]`` = number of draws with ``argmax model(x_i + u) = c``.
        """
        check_min_ndim("x", x, 2, "[m, *shape]")
        check_finite("x", x)
        check_positive_int("n", n)
        check_generator(generator, x.device)
        m = x.shape[0]
        counts = None
        with eval_mode(self.model), torch.no_grad():
            # Flat (point, draw) pairs, chunked: every forward pass is full-size
            # whatever the split between points and draws.
            for start in range(0, m * n, self.batch_size):
                rows = torch.arange(start, min(start + self.batch_size, m * n), device=x.device) // n
                noise = torch.randn((rows.shape[0],) + x.shape[1:], generator=generator,
                                    dtype=x.dtype, device=x.device)
                logits = self.model(x[rows] + self.noise_std * noise)
                votes = logits.argmax(dim=1)
                if counts is None:
                    counts = torch.zeros(m, logits.shape[1], dtype=torch.int64, device=x.device)
                counts.index_put_((rows, votes), torch.ones_like(votes), accumulate=True)
        return counts

    def predict(self, x: torch.Tensor, *, alpha: float = DEFAULT_ALPHA,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Cohen et al.'s PREDICT: the top class, or ``ABSTAIN`` unless it wins significantly.

        The top class is returned when the two-sided exact binomial test of
        ``n_A`` against ``n_A + n_B`` at ``p = 1/2`` (top two counts) has p-value
        ``<= alpha``; then ``P(prediction != g(x)) <= alpha``.

        Returns
        -------
        Tensor, shape [m], int64
        """
        _check_alpha(alpha)
        counts = self.class_counts(x, self.n_samples, generator=generator)
        top2 = counts.topk(min(2, counts.shape[1]), dim=1)
        n_a = top2.values[:, 0].cpu().numpy()
        n_b = top2.values[:, 1].cpu().numpy() if counts.shape[1] > 1 else np.zeros_like(n_a)
        p_values = binomial_half_p_value(n_a, n_b)
        winner = torch.as_tensor(p_values <= alpha, device=x.device)
        return torch.where(winner, top2.indices[:, 0], torch.full_like(top2.indices[:, 0], ABSTAIN))

    def certify(self, x: torch.Tensor, *, n0: int = 100, alpha: float = DEFAULT_ALPHA,
                generator: torch.Generator | None = None) -> Certificate:
        """Cohen et al.'s CERTIFY: class from ``n0`` draws, radius from ``n_samples`` fresh draws.

        With probability ``>= 1 − alpha`` (over the noise), a non-abstaining
        prediction equals ``g(x)`` and ``g`` is constant on the L2 ball of the
        returned radius ``σ Φ⁻¹(p̲_A)``.

        Returns
        -------
        Certificate
            ``(prediction [m], radius [m], p_lower [m])``.
        """
        _check_alpha(alpha)
        check_positive_int("n0", n0)
        guess = self.class_counts(x, n0, generator=generator).argmax(dim=1)
        counts = self.class_counts(x, self.n_samples, generator=generator)
        n_a = counts.gather(1, guess.unsqueeze(1)).squeeze(1).cpu().numpy()
        p_lower = clopper_pearson_lower(n_a, self.n_samples, alpha)
        certified = p_lower > 0.5
        radius = np.where(certified, self.noise_std * stats.norm.ppf(np.where(certified, p_lower, 0.5)), 0.0)
        prediction = torch.where(torch.as_tensor(certified, device=x.device), guess,
                                 torch.full_like(guess, ABSTAIN))
        return Certificate(prediction, torch.as_tensor(radius, dtype=torch.float64, device=x.device),
                           torch.as_tensor(p_lower, dtype=torch.float64, device=x.device))


def clopper_pearson_lower(successes: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided exact lower bound ``Beta⁻¹(alpha; k, n − k + 1)`` (0 where ``k = 0``)."""
    k = np.asarray(successes, dtype=np.float64)
    safe = np.where(k > 0, k, 1.0)
    return np.where(k > 0, stats.beta.ppf(alpha, safe, n - safe + 1.0), 0.0)


def binomial_half_p_value(n_a: np.ndarray, n_b: np.ndarray) -> np.ndarray:
    """Two-sided exact binomial test of ``n_a`` successes in ``n_a + n_b`` trials at ``p = 1/2``.

    ``Bin(n, 1/2)`` is symmetric, so the two-sided p-value (the total probability
    of outcomes no more likely than the observed one) is ``min(1, 2 P(X <= min(n_a, n_b)))``;
    the same number as ``scipy.stats.binomtest(n_a, n_a + n_b, 0.5).pvalue``, vectorised.
    """
    n_a, n_b = np.asarray(n_a, dtype=np.int64), np.asarray(n_b, dtype=np.int64)
    return np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(n_a, n_b), n_a + n_b, 0.5))


def _check_alpha(alpha: float) -> None:
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
