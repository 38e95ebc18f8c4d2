"""Modified Bessel function of the first kind, in the scaled forms the vMF mixture needs.

For a fixed order ``nu >= 0`` and ``z >= 0`` this module evaluates, in pure torch
(any device, differentiable to any order):

- ``log_scaled(z)  = h(z) = log(exp(-z) z^(-nu) I_nu(z))``, finite at ``z = 0``
  where it equals ``-nu log 2 - lgamma(nu + 1)``;
- ``ratio(z)       = A(z) = I_{nu+1}(z) / I_nu(z)``, the derivative of
  ``log(z^(-nu) I_nu(z))``;
- ``ratio_complement(z) = 1 - A(z)``, computed without cancellation for large ``z``
  (needed because scores at small noise multiply it by ``1 / noise_std^2``).

Derivatives used by autograd (and exact, not approximated): ``h' = A - 1``,
``A' = (1 - A)(1 + A) - (2 nu + 1) A / z`` (limit ``1 / (2 nu + 2)`` at ``z = 0``).

Three regimes, chosen per element (all computed in float64):

- power series (``nu < DEBYE_MIN_ORDER``, ``z <= hankel_start``)
  ``z^(-nu) I_nu(z) = 2^(-nu) sum_m (z^2/4)^m / (m! Gamma(m + nu + 1))``, all terms
  positive, so no cancellation; the number of terms is fixed per order so that the
  tail at ``z = hankel_start`` is below float64 resolution;
- Debye's uniform expansion in the order (``nu >= DEBYE_MIN_ORDER``,
  ``z <= hankel_start``), with ``DEBYE_TERMS`` polynomials ``u_k(t)`` generated
  exactly (rational arithmetic) from the standard recurrence;
- Hankel's large-argument expansion (``z > hankel_start``)
  ``I_nu(z) ~ e^z / sqrt(2 pi z) sum_j (-1)^j a_j(nu) / z^j``,
  ``a_j(nu) = prod_{i<=j} (4 nu^2 - (2i - 1)^2) / (8 i)``; the start is chosen per
  order so that every term is <= ``HANKEL_MAX_TERM`` in size (no cancellation) and
  the truncation error is below float64 resolution.

Accuracy (checked against mpmath in tests/test_data_bessel.py): about 1e-15
relative for ``h`` and ``1 - A`` and 1e-14 for ``A`` at orders up to 100 and
arguments from 0 to 1e8.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

__all__ = ["BesselI"]

#: Orders at or above this use Debye's expansion instead of the power series; with
#: ``DEBYE_TERMS`` terms its relative error is below 4e-16 from this order on (measured
#: against mpmath), while the power series would need ~0.15 nu^2 terms beyond it.
DEBYE_MIN_ORDER = 15.0
#: Number of Debye polynomials u_1..u_K kept.
DEBYE_TERMS = 13
#: Below this argument Hankel's expansion misses the exp(-2z) contribution of the
#: second exponential (exp(-40) ~ 4e-18 is below float64 resolution).
HANKEL_MIN_ARGUMENT = 20.0
#: Hankel's expansion is used only where no partial term exceeds this size, so
#: its alternating sum loses at most one bit to cancellation.
HANKEL_MAX_TERM = 2.0
#: Truncation target for both series (relative to the sum).
SERIES_TOLERANCE = 1e-18
_MAX_TERMS = 10_000


def _hankel_coefficients(nu: Fraction, n_terms: int) -> list[Fraction]:
    """Signed coefficients ``(-1)^j a_j(nu)``, j = 0..n_terms-1, exactly."""
    coeffs = [Fraction(1)]
    for j in range(1, n_terms):
        coeffs.append(-coeffs[-1] * (4 * nu * nu - (2 * j - 1) ** 2) / (8 * j))
    return coeffs


def _hankel_plan(nu: float) -> tuple[float, int]:
    """Smallest start argument and number of terms for orders ``nu`` and ``nu + 1``.

    Scans z upward (steps of max(1, z/200)) until, for both orders, the partial terms stay below
    ``HANKEL_MAX_TERM`` and fall below ``SERIES_TOLERANCE``; the number of terms
    found there also suffices for every larger z (each term decays like z^-j).
    """
    z = max(HANKEL_MIN_ARGUMENT, 0.2 * (nu + 1.0) ** 2)
    while True:
        n_needed = 0
        ok = True
        for order in (nu, nu + 1.0):
            term, biggest = 1.0, 1.0
            for j in range(1, _MAX_TERMS):
                term *= (4 * order * order - (2 * j - 1) ** 2) / (8 * j * z)
                biggest = max(biggest, abs(term))
                if abs(term) < SERIES_TOLERANCE:
                    n_needed = max(n_needed, j + 1)
                    break
                if j > 2 * z + 2 * order:  # past the smallest term: diverging
                    ok = False
                    break
            ok = ok and biggest <= HANKEL_MAX_TERM
        if ok:
            return z, n_needed
        z += max(1.0, z / 200.0)


def _series_terms(nu: float, z_max: float) -> int:
    """Terms of the power series for ``z <= z_max`` with relative tail < tolerance."""
    q = z_max * z_max / 4.0
    term, total = 1.0, 1.0
    for m in range(_MAX_TERMS):
        term *= q / ((m + 1) * (m + 1 + nu))
        total += term
        # Once the ratio of consecutive terms is < 1/2 the tail is < the current term.
        if term < SERIES_TOLERANCE * total and q / ((m + 2) * (m + 2 + nu)) < 0.5:
            return m + 2
    raise RuntimeError(f"power series for I_{nu} did not converge at z={z_max}")


def _debye_polynomials(n_terms: int) -> list[list[float]]:
    """Coefficients (ascending powers of t) of Debye's u_0..u_n_terms.

    Recurrence: ``u_{k+1}(t) = t^2 (1 - t^2) u_k'(t) / 2 + (1/8) int_0^t (1 - 5 s^2) u_k(s) ds``.
    """
    polys = [[Fraction(1)]]
    for _ in range(n_terms):
        u = polys[-1]
        nxt = [Fraction(0)] * (len(u) + 4)
        for i, c in enumerate(u):
            if i > 0:  # derivative term i c t^(i-1) times t^2 (1 - t^2) / 2
                nxt[i + 1] += i * c / 2
                nxt[i + 3] -= i * c / 2
            nxt[i + 1] += c / (8 * (i + 1))
            nxt[i + 3] -= 5 * c / (8 * (i + 3))
        while nxt and nxt[-1] == 0:
            nxt.pop()
        polys.append(nxt)
    return [[float(c) for c in p] for p in polys]


def _horner(coeffs: list[float], t: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * t + c
    return out


class BesselI:
    """Scaled modified Bessel function of the first kind of one fixed order.

    Parameters
    ----------
    nu : float
        The order, ``nu >= 0`` (the vMF mixture on a k-sphere uses ``nu = (k - 1) / 2``).

    Notes
    -----
    All public methods take ``z : Tensor, shape [...]`` with ``z >= 0``, any float
    dtype and device; they compute in float64 and return ``z``'s dtype. They are
    differentiable to any order through custom autograd functions whose
    derivatives are the exact identities in the module docstring.
    """

    def __init__(self, nu: float) -> None:
        nu = float(nu)
        if not math.isfinite(nu) or nu < 0:
            raise ValueError(f"Bessel order nu must be finite and >= 0, got {nu}")
        self.nu = nu
        self.hankel_start, n_hankel = _hankel_plan(nu)
        exact_nu = Fraction(nu)
        c_nu = _hankel_coefficients(exact_nu, n_hankel)
        c_next = _hankel_coefficients(exact_nu + 1, n_hankel)
        self._hankel_nu = [float(c) for c in c_nu]
        self._hankel_next = [float(c) for c in c_next]
        # P_nu - P_{nu+1}, coefficient by coefficient and exactly, so that 1 - A
        # keeps full relative precision when A is within 1e-6 of 1.
        self._hankel_diff = [float(a - b) for a, b in zip(c_nu, c_next)]
        self.use_debye = nu >= DEBYE_MIN_ORDER
        if self.use_debye:
            self._debye = _debye_polynomials(DEBYE_TERMS)
        else:
            self._series_terms = _series_terms(nu, self.hankel_start)

    # ---- public, differentiable ------------------------------------------------
    def log_scaled(self, z: torch.Tensor) -> torch.Tensor:
        """``h(z) = log(exp(-z) z^(-nu) I_nu(z))``; ``z : Tensor, shape [...]``, ``z >= 0``."""
        return _LogScaled.apply(z, self)

    def ratio(self, z: torch.Tensor) -> torch.Tensor:
        """``A(z) = I_{nu+1}(z) / I_nu(z)`` in ``[0, 1)``; ``z : Tensor, shape [...]``."""
        return _Ratio.apply(z, self)

    def ratio_complement(self, z: torch.Tensor) -> torch.Tensor:
        """``1 - I_{nu+1}(z) / I_nu(z)`` in ``(0, 1]``, accurate when it is tiny."""
        return _RatioComplement.apply(z, self)

    def log_normalizer(self, z: torch.Tensor) -> torch.Tensor:
        """``log int_{S^(2 nu + 1)} exp(z e^T u) du = (nu + 1) log(2 pi) + z + h(z)``.

        The integral is over the unit sphere in ``R^(2 nu + 2)`` with its surface
        measure; it equals ``(2 pi)^(nu + 1) z^(-nu) I_nu(z)``.
        """
        return (self.nu + 1.0) * math.log(2.0 * math.pi) + z + self.log_scaled(z)

    # ---- float64 evaluation, no autograd ---------------------------------------
    def _evaluate(self, z: torch.Tensor, want: str) -> torch.Tensor:
        """Evaluate ``want`` in {"h", "A", "1-A"} on float64 ``z`` (no grad)."""
        out = torch.empty_like(z)
        large = z > self.hankel_start
        if bool(large.any()):
            out[large] = self._hankel(z[large], want)
        small = ~large
        if bool(small.any()):
            zs = z[small]
            out[small] = self._debye_eval(zs, want) if self.use_debye else self._series(zs, want)
        return out

    def _series(self, z: torch.Tensor, want: str) -> torch.Tensor:
        nu = self.nu
        q = z * z / 4.0
        term = torch.ones_like(z)
        s_nu = torch.ones_like(z)  # sum_m q^m / (m! (nu+1)_m)
        s_next = torch.full_like(z, 1.0 / (nu + 1.0))  # same with one more rising factor
        for m in range(1, self._series_terms):
            term = term * q / (m * (m + nu))
            s_nu = s_nu + term
            s_next = s_next + term / (m + nu + 1.0)
        if want == "h":
            return torch.log(s_nu) - nu * math.log(2.0) - math.lgamma(nu + 1.0) - z
        ratio = 0.5 * z * s_next / s_nu
        return ratio if want == "A" else 1.0 - ratio

    def _hankel(self, z: torch.Tensor, want: str) -> torch.Tensor:
        w = 1.0 / z
        p_nu = _horner(self._hankel_nu, w)
        if want == "h":
            return -0.5 * torch.log(2.0 * math.pi * z) - self.nu * torch.log(z) + torch.log(p_nu)
        if want == "A":
            return _horner(self._hankel_next, w) / p_nu
        return _horner(self._hankel_diff, w) / p_nu

    def _debye_log_scaled(self, z: torch.Tensor, nu: float) -> torch.Tensor:
        s = z / nu
        root = torch.sqrt(1.0 + s * s)
        t = 1.0 / root
        series = torch.zeros_like(z)
        for k in reversed(range(len(self._debye))):
            series = series / nu + _horner(self._debye[k], t)
        # nu*eta - nu*log z - z, rearranged so nothing cancels:
        # nu (sqrt(1+s^2) - s) - nu log(1 + sqrt(1+s^2)) - nu log nu
        return (
            nu / (root + s)
            - nu * torch.log1p(root)
            - nu * math.log(nu)
            - 0.5 * math.log(2.0 * math.pi * nu)
            - 0.5 * torch.log(root)
            + torch.log(series)
        )

    def _debye_eval(self, z: torch.Tensor, want: str) -> torch.Tensor:
        h_nu = self._debye_log_scaled(z, self.nu)
        if want == "h":
            return h_nu
        # A = I_{nu+1}/I_nu = z exp(h_{nu+1} - h_nu) (the e^z factors cancel).
        ratio = z * torch.exp(self._debye_log_scaled(z, self.nu + 1.0) - h_nu)
        return ratio if want == "A" else 1.0 - ratio

    def _value(self, z: torch.Tensor, want: str) -> torch.Tensor:
        with torch.no_grad():
            return self._evaluate(z.detach().to(torch.float64), want).to(z.dtype)

    def _ratio_derivative(self, z: torch.Tensor) -> torch.Tensor:
        """``A'(z)``, built from differentiable pieces so higher derivatives exist."""
        a = self.ratio(z)
        one_minus = self.ratio_complement(z)
        tiny = torch.finfo(z.dtype).tiny
        a_over_z = torch.where(z > 0, a / z.clamp_min(tiny), torch.full_like(z, 0.5 / (self.nu + 1.0)))
        return one_minus * (1.0 + a) - (2.0 * self.nu + 1.0) * a_over_z


class _LogScaled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, bessel):
        ctx.bessel = bessel
        ctx.save_for_backward(z)
        return bessel._value(z, "h")

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return -grad * ctx.bessel.ratio_complement(z), None


class _Ratio(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, bessel):
        ctx.bessel = bessel
        ctx.save_for_backward(z)
        return bessel._value(z, "A")

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * ctx.bessel._ratio_derivative(z), None


class _RatioComplement(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, bessel):
        ctx.bessel = bessel
        ctx.save_for_backward(z)
        return bessel._value(z, "1-A")

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return -grad * ctx.bessel._ratio_derivative(z), None
