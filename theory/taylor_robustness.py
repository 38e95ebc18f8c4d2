"""Symbolic derivation behind Theorem 3.1: the small-noise expansion of Definition 1.

For a generic polynomial ``f : R^d → R`` of degree ``p`` (every coefficient a
free symbol), a symmetric matrix ``P`` (every entry a free symbol; an
orthogonal projector is the special case ``P² = P``) and ``u ~ N(0, σ² I)``,
this module expands

    E[(f(x + P u) − f(x))²] = Σ_m c_m σ^m

exactly. ``v = P u`` is Gaussian with covariance ``σ² S``, ``S = P Pᵀ = P²``,
so the expectation of every monomial ``v_{i1}…v_{im}`` follows from Isserlis'
theorem: zero for odd ``m``, and for even ``m`` the sum over all pairings of
the indices of ``σ^m Π S_{ab}``. The derivation shows

* ``c_m = 0`` for every odd ``m`` (odd Gaussian moments vanish),
* the series starts at ``σ²`` with ``c_2 = gᵀ S g = ‖P g‖²`` (``g = ∇f(x)``),
  which for a projector is ``gᵀ P g``,
* the remainder is ``O(σ⁴)`` with
  ``c_4 = ¼ tr(HS)² + ½ tr((HS)²) + Σ_j (S g)_j Σ_{kl} T_{jkl} S_{kl}``
  (``H`` the Hessian, ``T`` the third-derivative tensor); for a quadratic ``f``
  and a projector this is ``½ tr((PHP)²) + ¼ tr(PHP)²``, exact to all orders.

Hence ``R_N/R_T = (‖P_N g‖² + O(σ²)) / (‖P_T g‖² + O(σ²)) → A(x)`` with error
``O(σ²)`` (Theorem 3.1). Run ``python -m theory.taylor_robustness`` to print it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

__all__ = [
    "isserlis_moment",
    "gaussian_expectation",
    "generic_polynomial",
    "expected_squared_increment",
    "quartic_coefficient_formula",
    "TaylorDerivation",
    "derive",
]


def isserlis_moment(indices: tuple[int, ...], cov: sp.Matrix) -> sp.Expr:
    """``E[v_{i1} … v_{im}]`` for ``v ~ N(0, cov)`` by Isserlis' (Wick's) theorem.

    Pair the first index with each other index in turn and recurse:
    ``E[v_a Π_rest] = Σ_b cov[a, b] E[Π_{rest without b}]``; an odd number of
    factors gives 0.
    """

    @lru_cache(maxsize=None)
    def moment(idx: tuple[int, ...]) -> sp.Expr:
        if not idx:
            return sp.Integer(1)
        if len(idx) % 2:
            return sp.Integer(0)
        a, rest = idx[0], idx[1:]
        return sp.Add(*[cov[a, rest[j]] * moment(rest[:j] + rest[j + 1 :]) for j in range(len(rest))])

    return sp.expand(moment(tuple(sorted(indices))))


def gaussian_expectation(poly: sp.Expr, vs: list[sp.Symbol], cov: sp.Matrix) -> sp.Expr:
    """``E[poly(v)]`` for ``v ~ N(0, cov)``, by linearity over the monomials of ``poly`` in ``vs``."""
    total = sp.Integer(0)
    for exps, coeff in sp.Poly(sp.expand(poly), *vs).terms():
        idx = tuple(itertools.chain.from_iterable([i] * e for i, e in enumerate(exps)))
        total += coeff * isserlis_moment(idx, cov)
    return sp.expand(total)


def generic_polynomial(xs: list[sp.Symbol], degree: int, name: str = "a") -> tuple[sp.Expr, list[sp.Symbol]]:
    """``Σ_{|α| ≤ degree} a_α x^α`` with one free coefficient symbol per monomial."""
    terms, coeffs = [], []
    for deg in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(len(xs)), deg):
            a = sp.Symbol(f"{name}_{''.join(map(str, combo)) or 'c'}")
            coeffs.append(a)
            terms.append(a * sp.Mul(*[xs[i] for i in combo]))
    return sp.Add(*terms), coeffs


def expected_squared_increment(
    f: sp.Expr, xs: list[sp.Symbol], P: sp.Matrix, sigma: sp.Symbol
) -> sp.Expr:
    """``E[(f(x + P u) − f(x))²]``, ``u ~ N(0, σ² I)``, as an expanded polynomial in ``σ``."""
    d = len(xs)
    vs = sp.symbols(f"v0:{d}")
    shifted = f.subs({xs[i]: xs[i] + vs[i] for i in range(d)}, simultaneous=True)
    increment_sq = sp.expand((shifted - f) ** 2)
    return gaussian_expectation(increment_sq, list(vs), sigma**2 * P * P.T)


def quartic_coefficient_formula(f: sp.Expr, xs: list[sp.Symbol], S: sp.Matrix) -> sp.Expr:
    """``c_4 = ¼ tr(HS)² + ½ tr((HS)²) + Σ_j (Sg)_j Σ_{kl} T_{jkl} S_{kl}`` at ``x``."""
    d = len(xs)
    g = sp.Matrix([sp.diff(f, xi) for xi in xs])
    H = sp.hessian(f, xs)
    HS = H * S
    Sg = S * g
    third = sp.Add(*[
        Sg[j] * sp.diff(f, xs[j], xs[k], xs[l]) * S[k, l]
        for j in range(d) for k in range(d) for l in range(d)
    ])
    return sp.expand(HS.trace() ** 2 / 4 + (HS * HS).trace() / 2 + third)


@dataclass(frozen=True)
class TaylorDerivation:
    """Result of :func:`derive`; the ``*_holds`` flags are exact symbolic checks.

    Attributes
    ----------
    coefficients : dict[int, sympy.Expr]
        ``c_m`` of ``σ^m`` in ``E[(f(x+Pu) − f(x))²]`` (all powers present, zeros included).
    leading_term_holds : bool
        ``c_0 = c_1 = 0`` and ``c_2 − ‖Pg‖² ≡ 0``.
    odd_terms_vanish : bool
        ``c_m ≡ 0`` for every odd ``m``.
    quartic_term_holds : bool
        ``c_4`` equals :func:`quartic_coefficient_formula`.
    projector_leading_term_holds : bool
        With ``P`` replaced by a concrete rank-1 projector, ``c_2 ≡ gᵀPg``.
    """

    dim: int
    degree: int
    expectation: sp.Expr
    coefficients: dict
    leading_term_holds: bool
    odd_terms_vanish: bool
    quartic_term_holds: bool
    projector_leading_term_holds: bool
    xs: tuple
    P: sp.Matrix
    sigma: sp.Symbol
    f: sp.Expr


def _is_zero(expr: sp.Expr) -> bool:
    return sp.expand(expr) == 0


def derive(dim: int = 2, degree: int = 3) -> TaylorDerivation:
    """Expand ``E[(f(x+Pu) − f(x))²]`` for a generic polynomial and check the claims.

    Parameters
    ----------
    dim : int
        Ambient dimension ``d`` (2 keeps the expansion to about a second).
    degree : int
        Degree ``p ≥ 1`` of ``f``; ``p ≥ 3`` exercises the third-derivative part of ``c_4``.
    """
    if dim < 1 or degree < 1:
        raise ValueError(f"dim and degree must be >= 1, got dim={dim}, degree={degree}")
    xs = sp.symbols(f"x0:{dim}")
    sigma = sp.Symbol("sigma", positive=True)
    f, _ = generic_polynomial(list(xs), degree)
    P = sp.Matrix(dim, dim, lambda i, j: sp.Symbol(f"p_{min(i, j)}{max(i, j)}"))  # symmetric
    E = expected_squared_increment(f, list(xs), P, sigma)
    poly = sp.Poly(E, sigma)
    top = 2 * degree
    coeffs = {m: sp.expand(poly.coeff_monomial(sigma**m)) for m in range(top + 1)}
    g = sp.Matrix([sp.diff(f, xi) for xi in xs])
    Pg = P * g
    leading = _is_zero(coeffs[0]) and _is_zero(coeffs[1]) and _is_zero(coeffs[2] - (Pg.T * Pg)[0])
    odd = all(_is_zero(coeffs[m]) for m in range(1, top + 1, 2))
    quartic = _is_zero(coeffs.get(4, 0) - quartic_coefficient_formula(f, list(xs), P * P.T))
    # A concrete orthogonal projector onto span(1, 2, 0, …): P² = P, so ‖Pg‖² = gᵀPg.
    w = sp.Matrix([1, 2] + [0] * (dim - 2)) if dim >= 2 else sp.Matrix([1])
    proj = w * w.T / (w.T * w)[0]
    sub = {P[i, j]: proj[i, j] for i in range(dim) for j in range(dim)}
    proj_leading = _is_zero(coeffs[2].subs(sub) - (g.T * proj * g)[0])
    return TaylorDerivation(
        dim=dim, degree=degree, expectation=E, coefficients=coeffs,
        leading_term_holds=leading, odd_terms_vanish=odd, quartic_term_holds=quartic,
        projector_leading_term_holds=proj_leading, xs=tuple(xs), P=P, sigma=sigma, f=f,
    )


if __name__ == "__main__":  # pragma: no cover - a printout for readers
    res = derive()
    print(f"f = {res.f}")
    for m, c in res.coefficients.items():
        print(f"sigma^{m}: {'0' if c == 0 else f'{len(sp.Add.make_args(c))} terms'}")
    print("c2 = ||P g||^2:", res.leading_term_holds)
    print("odd terms vanish:", res.odd_terms_vanish)
    print("c4 formula:", res.quartic_term_holds)
    print("projector: c2 = g^T P g:", res.projector_leading_term_holds)
