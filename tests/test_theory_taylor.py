"""theory/taylor_robustness.py: the symbolic expansion behind Theorem 3.1."""

import itertools

import numpy as np
import sympy as sp

from theory.taylor_robustness import derive, expected_squared_increment, isserlis_moment


def test_generic_cubic_expansion_claims_hold():
    res = derive(dim=2, degree=3)
    assert res.leading_term_holds  # c0 = c1 = 0, c2 = ‖Pg‖²
    assert res.odd_terms_vanish
    assert res.quartic_term_holds  # the O(σ⁴) remainder's coefficient
    assert res.projector_leading_term_holds
    assert res.coefficients[4] != 0 and res.coefficients[6] != 0  # the remainder is really there


def test_quadratic_series_terminates_at_sigma4():
    # For quadratic f the expansion is exact: nothing beyond σ⁴.
    res = derive(dim=2, degree=2)
    assert res.leading_term_holds and res.odd_terms_vanish and res.quartic_term_holds
    assert max(m for m, c in res.coefficients.items() if c != 0) == 4


def test_isserlis_small_cases():
    s = sp.Matrix(2, 2, sp.symbols("s00 s01 s01 s11"))
    assert isserlis_moment((0, 0, 0, 0), s) == 3 * s[0, 0] ** 2
    assert sp.expand(isserlis_moment((0, 0, 1, 1), s) - (s[0, 0] * s[1, 1] + 2 * s[0, 1] ** 2)) == 0
    assert isserlis_moment((0, 1, 1), s) == 0


def test_expectation_matches_gauss_hermite_quadrature():
    # Independent numeric reference: a tensor-product Gauss–Hermite rule with 6
    # nodes per axis integrates polynomials of degree ≤ 11 against N(0, 1) exactly;
    # the squared increment of a cubic has degree 6. Only float64 rounding remains.
    rng = np.random.default_rng(0)
    xs = sp.symbols("x0:2")
    coeffs = {m: float(rng.normal()) for m in itertools.product(range(4), repeat=2) if sum(m) <= 3}
    f = sum(c * xs[0] ** i * xs[1] ** j for (i, j), c in coeffs.items())
    P = sp.Matrix([[0.7, 0.2], [0.2, 0.4]])
    sigma = sp.Symbol("sigma", positive=True)
    E = expected_squared_increment(f, list(xs), P, sigma)
    x0, sig = np.array([0.3, -1.1]), 0.8
    symbolic = float(E.subs({xs[0]: x0[0], xs[1]: x0[1], sigma: sig}))
    fnum = sp.lambdify(xs, f, "numpy")
    nodes, weights = np.polynomial.hermite_e.hermegauss(6)
    weights = weights / weights.sum()
    Pn = np.array(P, dtype=float)
    total = 0.0
    for (a, wa), (b, wb) in itertools.product(zip(nodes, weights), repeat=2):
        v = sig * Pn @ np.array([a, b])
        total += wa * wb * (fnum(*(x0 + v)) - fnum(*x0)) ** 2
    assert abs(symbolic - total) <= 1e-10 * max(1.0, abs(total))
