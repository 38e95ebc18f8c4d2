"""The scaled modified Bessel functions behind the vMF mixture, against mpmath."""

import math

import mpmath
import pytest
import torch

from manifold_lab.data._bessel import BesselI

mpmath.mp.dps = 50

ORDERS = [0.0, 0.5, 1.0, 1.5, 3.0, 9.5, 14.5, 15.0, 20.0, 49.5]
ARGS = [0.0, 1e-12, 1e-4, 0.3, 1.0, 4.0, 12.0, 19.5, 20.5, 35.0, 70.0, 150.0, 700.0, 3e3, 1e4, 1e5, 1e6, 1e8]
EPS = torch.finfo(torch.float64).eps
# float64 resolution is 1.1e-16; the series and Hankel regimes sum <= ~100
# positive or bounded alternating terms (|term| <= 2), so h, A and 1 - A carry a
# relative error of ~100 eps at most: TOL_H and TOL_RATIO. The Debye regime forms
# A = z exp(h_{nu+1} - h_nu) from logs whose terms reach M = (nu + 1)(log(nu + 1) +
# log(1 + sqrt(1 + (z/nu)^2)) + 1), so A has an absolute error of ~8 eps M A, and
# 1 - A that divided by 1 - A: _debye_tolerance.
TOL_H = 1e-14
TOL_RATIO = 100 * EPS


def _debye_tolerance(b, nu, z, a_ref, c_ref):
    if not b.use_debye or z > b.hankel_start:
        return TOL_RATIO, TOL_RATIO
    mag = (nu + 1) * (math.log(nu + 1) + math.log1p(math.sqrt(1 + (z / nu) ** 2)) + 1)
    abs_err = 8 * EPS * mag * a_ref
    return max(TOL_RATIO, abs_err / max(a_ref, 1e-300)), max(TOL_RATIO, abs_err / c_ref)


def _reference(nu, z):
    if z == 0:
        return float(-nu * mpmath.log(2) - mpmath.loggamma(nu + 1)), 0.0, 1.0
    zm = mpmath.mpf(z)
    i_nu, i_next = mpmath.besseli(nu, zm), mpmath.besseli(nu + 1, zm)
    h = mpmath.log(i_nu) - zm - nu * mpmath.log(zm)
    a = i_next / i_nu
    return float(h), float(a), float(1 - a)


@pytest.mark.parametrize("nu", ORDERS)
def test_values_match_mpmath(nu):
    b = BesselI(nu)
    # Arguments straddling this order's regime switch too.
    zs = sorted(set(ARGS + [b.hankel_start * (1 - 1e-9), b.hankel_start * (1 + 1e-9)]))
    z = torch.tensor(zs, dtype=torch.float64)
    h, a, c = b.log_scaled(z), b.ratio(z), b.ratio_complement(z)
    for i, zi in enumerate(zs):
        h_ref, a_ref, c_ref = _reference(nu, zi)
        tol_a, tol_c = _debye_tolerance(b, nu, zi, a_ref, c_ref)
        assert abs(h[i].item() - h_ref) <= TOL_H * max(1.0, abs(h_ref)), (nu, zi)
        assert abs(a[i].item() - a_ref) <= tol_a * max(a_ref, 1e-300), (nu, zi)
        assert abs(c[i].item() - c_ref) <= tol_c * c_ref, (nu, zi)


def test_log_normalizer_is_the_vmf_integral_on_the_circle():
    # p = 2: int_0^{2 pi} exp(z cos t) dt = 2 pi I_0(z).
    b = BesselI(0.0)
    z = torch.tensor([0.0, 0.7, 30.0], dtype=torch.float64)
    expected = [math.log(2 * math.pi * float(mpmath.besseli(0, zi))) for zi in z.tolist()]
    assert torch.allclose(b.log_normalizer(z), torch.tensor(expected, dtype=torch.float64), rtol=1e-14)


@pytest.mark.parametrize("nu", [0.0, 1.5, 20.0])
def test_derivatives_are_exact_identities(nu):
    b = BesselI(nu)
    # Points in every regime, away from z = 0 where gradcheck's finite step leaves the domain.
    z = torch.tensor([0.05, b.hankel_start - 0.5, b.hankel_start + 0.5, 400.0], dtype=torch.float64,
                     requires_grad=True)
    # Central differences with step 1e-6 have error ~1e-12 (truncation) + 1e-10 (rounding).
    for fn in (b.log_scaled, b.ratio, b.ratio_complement):
        assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-8, rtol=1e-6, fast_mode=True)
    # The ratio's backward is built from ratio and ratio_complement: second order too.
    assert torch.autograd.gradgradcheck(b.ratio, (z,), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True)


def test_derivative_limit_at_zero():
    b = BesselI(1.0)
    z = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(b.ratio(z).sum(), z)
    assert g.item() == pytest.approx(1 / (2 * (1.0 + 1)), rel=1e-14)
    (g,) = torch.autograd.grad(b.log_scaled(z).sum(), z)
    assert g.item() == pytest.approx(-1.0, rel=1e-14)  # h'(0) = A(0) - 1


def test_float32_in_float32_out():
    b = BesselI(0.5)
    z64 = torch.tensor([0.5, 25.0, 1e5], dtype=torch.float64)
    out32 = b.log_scaled(z64.float())
    assert out32.dtype == torch.float32
    assert torch.allclose(out32.double(), b.log_scaled(z64), rtol=1e-6)


def test_batched_shapes():
    b = BesselI(2.0)
    z = torch.rand(3, 4, 5, dtype=torch.float64) * 100
    assert b.ratio(z).shape == (3, 4, 5)
    flat = b.ratio(z.flatten()).reshape(3, 4, 5)
    assert torch.equal(flat, b.ratio(z))


@pytest.mark.parametrize("nu", [-1.0, float("nan"), float("inf")])
def test_bad_order(nu):
    with pytest.raises(ValueError, match="order"):
        BesselI(nu)


def test_cuda_matches_cpu(cuda_device):
    b = BesselI(1.5)
    z = torch.tensor([0.0, 1.0, 30.0, 1e6], dtype=torch.float64)
    assert torch.allclose(b.ratio_complement(z.to(cuda_device)).cpu(), b.ratio_complement(z), rtol=1e-13)
