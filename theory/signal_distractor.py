"""Symbolic derivation behind Theorem 3.2 for Gaussian signal–distractor data.

In the orthonormal frame ``x = b + S x_s + D x_d + N x_n`` of
``manifold_lab.data.LinearSignalDistractor`` (signal, distractor and normal
coordinates) the class-conditional density factorises:

    log p(x | c) = sum_i [-(x_s,i - m_c,i)^2 / (2 v_s)] - |x_d|^2 / (2 v_d) - |x_n|^2 / (2 sigma^2) + const,
    v_s = tau_s^2 + sigma^2,  v_d = tau_d^2 + sigma^2.

This module builds that density with every quantity a free symbol (coordinates,
class means, standard deviations, log-priors), forms the exact posterior

    log p(y | x) = log p(x | y) + l_y - log sum_c exp(log p(x | c) + l_c)

and lets sympy show

* the posterior is the linear soft-max ``log_softmax_c((m_c^T x_s - |m_c|^2 / 2) / v_s + l_c)``
  (the distractor and normal terms cancel between numerator and denominator);
* ``d log p(y | x) / d x_d = 0`` and ``d log p(y | x) / d x_n = 0`` identically:
  the distractor component (Theorem 3.2) and, since the data manifold is the
  affine span of signal and distractor, the normal component vanish exactly;
* ``d log p(y | x) / d x_s = (m_y - sum_c p(c | x) m_c) / v_s``.

Run ``python -m theory.signal_distractor`` to print the derivation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

__all__ = ["SignalDistractorDerivation", "derive"]


@dataclass(frozen=True)
class SignalDistractorDerivation:
    """The symbolic posterior of signal–distractor data and what it proves.

    Attributes
    ----------
    x_signal, x_distractor, x_normal : list of sympy.Symbol
        Frame coordinates of ``x``.
    means : sympy.Matrix, shape [C, ks]
        Class means ``m_c`` in signal coordinates.
    tau_s, tau_d, sigma : sympy.Symbol
        Signal, distractor and noise standard deviations (positive).
    log_priors : list of sympy.Symbol
        ``l_c = log pi_c`` (free; the posterior formula does not need them normalised).
    log_posterior : list of sympy.Expr
        ``log p(y = c | x)`` built from the full densities, one per class.
    logits : list of sympy.Expr
        ``(m_c^T x_s - |m_c|^2 / 2) / v_s + l_c``.
    posterior_is_linear_softmax : bool
        ``log_posterior[c] - (logits[c] - log sum exp logits)`` simplifies to 0 for all c.
    distractor_gradient, normal_gradient : list of sympy.Matrix
        ``d log p(c | x) / d x_d`` and ``/ d x_n`` for each class; entries proven
        identically zero are replaced by 0 (all of them, for Definition 3 data).
    signal_gradient : list of sympy.Matrix
        ``d log p(c | x) / d x_s``; replaced by the closed form
        ``(m_c - sum_j p(j | x) m_j) / v_s`` where proven equal.
    signal_gradient_matches : bool
        ``signal_gradient[c] == (m_c - sum_j p(j | x) m_j) / v_s`` for all c.
    """

    x_signal: list
    x_distractor: list
    x_normal: list
    means: sp.Matrix
    tau_s: sp.Symbol
    tau_d: sp.Symbol
    sigma: sp.Symbol
    log_priors: list
    log_posterior: list
    logits: list
    posterior_is_linear_softmax: bool
    distractor_gradient: list
    normal_gradient: list
    signal_gradient: list
    signal_gradient_matches: bool

    @property
    def distractor_component_vanishes(self) -> bool:
        return all(g.is_zero_matrix for g in self.distractor_gradient)

    @property
    def normal_component_vanishes(self) -> bool:
        return all(g.is_zero_matrix for g in self.normal_gradient)

    def numeric(self) -> Callable:
        """Lambdify ``(x_s, x_d, x_n, means, tau_s, tau_d, sigma, log_priors) ->
        (log_posterior [C], gradient [C, ks + kd + dn])`` from the full-density expressions."""
        args = [self.x_signal, self.x_distractor, self.x_normal, list(self.means),
                self.tau_s, self.tau_d, self.sigma, self.log_priors]
        coords = self.x_signal + self.x_distractor + self.x_normal
        grads = [[sp.diff(lp, v) for v in coords] for lp in self.log_posterior]
        f = sp.lambdify(args, [self.log_posterior, grads], modules="math")

        def evaluate(x_s, x_d, x_n, means, tau_s, tau_d, sigma, log_priors):
            flat_means = [float(v) for row in means for v in row]
            return f(list(x_s), list(x_d), list(x_n), flat_means, tau_s, tau_d, sigma, list(log_priors))

        return evaluate


def _is_zero(expr: sp.Expr) -> bool:
    """Whether ``expr`` is identically 0, treating every ``exp(...)`` as an atom.

    Over a common denominator the numerator must expand to 0 as a polynomial in
    the coordinates, parameters and exponentials; ``power_exp=False`` keeps
    ``exp(a + b)`` whole, so no transcendental identity is needed (and it is fast).
    """
    numer, _ = sp.together(expr).as_numer_denom()
    return sp.expand(numer, power_exp=False, log=False) == 0


def derive(signal_dim: int = 2, distractor_dim: int = 2, normal_dim: int = 1,
           n_classes: int = 3, *, label_dependent_distractor: bool = False) -> SignalDistractorDerivation:
    """Derive the posterior and its gradient symbolically (see the module docstring).

    Parameters
    ----------
    signal_dim, distractor_dim, normal_dim : int
        Sizes of the three coordinate blocks (small: sympy's cost grows fast).
    n_classes : int
        ``C >= 2``.
    label_dependent_distractor : bool
        Control case that breaks Definition 3: the distractor mean depends on the
        class (``x_d | c ~ N(e_c, v_d I)``, ``e_c`` free symbols). Then the
        distractor gradient does not vanish and ``distractor_component_vanishes``
        is False, which shows the check can fail.
    """
    if min(signal_dim, distractor_dim, normal_dim) < 1 or n_classes < 2:
        raise ValueError("derive needs signal_dim, distractor_dim, normal_dim >= 1 and n_classes >= 2")
    xs = list(sp.symbols(f"xs0:{signal_dim}", real=True))
    xd = list(sp.symbols(f"xd0:{distractor_dim}", real=True))
    xn = list(sp.symbols(f"xn0:{normal_dim}", real=True))
    means = sp.Matrix(n_classes, signal_dim, lambda c, i: sp.Symbol(f"m{c}_{i}", real=True))
    tau_s, tau_d, sigma = sp.symbols("tau_s tau_d sigma", positive=True)
    log_priors = list(sp.symbols(f"l0:{n_classes}", real=True))
    if label_dependent_distractor:
        dmeans = sp.Matrix(n_classes, distractor_dim, lambda c, i: sp.Symbol(f"e{c}_{i}", real=True))
    else:
        dmeans = sp.zeros(n_classes, distractor_dim)
    v_s, v_d, v_n = tau_s**2 + sigma**2, tau_d**2 + sigma**2, sigma**2

    def log_lik(c: int) -> sp.Expr:
        sig = sum(-(xs[i] - means[c, i]) ** 2 / (2 * v_s) - sp.log(2 * sp.pi * v_s) / 2 for i in range(signal_dim))
        dis = sum(-(v - dmeans[c, i]) ** 2 / (2 * v_d) - sp.log(2 * sp.pi * v_d) / 2 for i, v in enumerate(xd))
        nor = sum(-v**2 / (2 * v_n) - sp.log(2 * sp.pi * v_n) / 2 for v in xn)
        return sig + dis + nor

    joint = [log_lik(c) + log_priors[c] for c in range(n_classes)]
    evidence = sp.log(sum(sp.exp(j) for j in joint))
    log_post = [j - evidence for j in joint]

    logits = [(sum(means[c, i] * xs[i] for i in range(signal_dim))
               - sum(means[c, i] ** 2 for i in range(signal_dim)) / 2) / v_s + log_priors[c]
              for c in range(n_classes)]
    # log p(x|c) + l_c - logit_c is the same for every class, so it cancels in the
    # soft-max and log p(c|x) = logit_c - logsumexp(logits).
    shared = joint[0] - logits[0]
    linear = all(_is_zero(joint[c] - logits[c] - shared) for c in range(n_classes))

    posterior = [sp.exp(j) / sum(sp.exp(k) for k in joint) for j in joint]
    dist_grad, norm_grad, sig_grad = [], [], []
    matches = True
    for c in range(n_classes):
        dist_grad.append(sp.Matrix([0 if _is_zero(g := sp.diff(log_post[c], v)) else g for v in xd]))
        norm_grad.append(sp.Matrix([0 if _is_zero(g := sp.diff(log_post[c], v)) else g for v in xn]))
        g = [sp.diff(log_post[c], v) for v in xs]
        expected = [(means[c, i] - sum(posterior[j] * means[j, i] for j in range(n_classes))) / v_s
                    for i in range(signal_dim)]
        ok = [_is_zero(g[i] - expected[i]) for i in range(signal_dim)]
        matches = matches and all(ok)
        sig_grad.append(sp.Matrix([expected[i] if ok[i] else g[i] for i in range(signal_dim)]))
    return SignalDistractorDerivation(xs, xd, xn, means, tau_s, tau_d, sigma, log_priors, log_post, logits,
                                      linear, dist_grad, norm_grad, sig_grad, matches)


def main() -> None:  # pragma: no cover - printing only
    d = derive()
    print("log p(y=0|x) =", d.log_posterior[0])
    print("linear soft-max form:", d.posterior_is_linear_softmax, "| logits[0] =", d.logits[0])
    print("d log p(y|x) / d x_distractor =", [list(g) for g in d.distractor_gradient])
    print("d log p(y|x) / d x_normal     =", [list(g) for g in d.normal_gradient])
    print("signal gradient = (m_y - E[m | x]) / v_s:", d.signal_gradient_matches)


if __name__ == "__main__":  # pragma: no cover
    main()
