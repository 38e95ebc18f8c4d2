"""Definition 2 (alignment ratio), the tangent fraction and score cosines."""

import math

import pytest
import torch
from hypothesis import given, strategies as st

from manifold_lab.metrics import (
    alignment_ratio,
    check_basis,
    orthonormality_tolerance,
    score_cosine,
    tangent_fraction,
)

F64 = torch.float64


def random_basis(*batch, d, k, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(*batch, d, k, generator=g, dtype=dtype)).Q


dims = st.integers(2, 12).flatmap(lambda d: st.tuples(st.just(d), st.integers(1, d - 1)))


@given(dims=dims, seed=st.integers(0, 10_000))
def test_against_explicit_projectors(dims, seed):
    # Independent reference: dense projector P_T = B Bᵀ and P_N = I − P_T.
    d, k = dims
    B = random_basis(5, d=d, k=k, seed=seed)
    g = torch.randn(5, d, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    PT = B @ B.transpose(-1, -2)
    gt = (PT @ g.unsqueeze(-1)).squeeze(-1)
    gn = g - gt
    # Float64 rounding of these length-d sums is ~d·eps relative; 1e-12 leaves ample room.
    torch.testing.assert_close(tangent_fraction(g, B), gt.norm(dim=-1) / g.norm(dim=-1), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        alignment_ratio(g, B), gn.square().sum(-1) / gt.square().sum(-1), rtol=1e-10, atol=0
    )
    tau = tangent_fraction(g, B)
    torch.testing.assert_close(alignment_ratio(g, B), (1 - tau**2) / tau**2, rtol=1e-8, atol=0)


@given(dims=dims, seed=st.integers(0, 10_000))
def test_invariant_under_basis_change_and_ambient_rotation(dims, seed):
    d, k = dims
    B = random_basis(3, d=d, k=k, seed=seed)
    Q = random_basis(3, d=k, k=k, seed=seed + 1)  # rotation inside T_x M
    R = random_basis(d=d, k=d, seed=seed + 2)  # ambient isometry
    g = torch.randn(3, d, generator=torch.Generator().manual_seed(seed + 3), dtype=F64)
    a = alignment_ratio(g, B)
    torch.testing.assert_close(alignment_ratio(g, B @ Q), a, rtol=1e-9, atol=0)
    torch.testing.assert_close(alignment_ratio(g @ R.T, R @ B), a, rtol=1e-9, atol=0)
    torch.testing.assert_close(tangent_fraction(5.0 * g, B), tangent_fraction(g, B), rtol=1e-12, atol=0)


def test_extreme_and_undefined_values():
    B = torch.eye(4, dtype=F64)[:, :2]
    tangent = torch.tensor([1.0, -2.0, 0.0, 0.0], dtype=F64)
    normal = torch.tensor([0.0, 0.0, 3.0, 1.0], dtype=F64)
    zero = torch.zeros(4, dtype=F64)
    assert tangent_fraction(tangent, B) == 1 and alignment_ratio(tangent, B) == 0
    assert tangent_fraction(normal, B) == 0 and alignment_ratio(normal, B) == math.inf
    assert math.isnan(tangent_fraction(zero, B)) and math.isnan(alignment_ratio(zero, B))


def test_nearly_tangent_gradient_keeps_relative_precision():
    # ‖g‖² − ‖Bᵀg‖² would cancel to 0 here; the explicit normal part keeps 1e-20.
    B = torch.eye(3, dtype=F64)[:, :1]
    g = torch.tensor([1.0, 1e-10, 0.0], dtype=F64)
    torch.testing.assert_close(alignment_ratio(g, B), torch.tensor(1e-20, dtype=F64), rtol=1e-12, atol=0)


def test_broadcasts_leading_dims():
    B = random_basis(d=6, k=2)  # one shared basis
    g = torch.randn(4, 3, 6, dtype=F64, generator=torch.Generator().manual_seed(0))
    out = tangent_fraction(g, B)
    assert out.shape == (4, 3)
    torch.testing.assert_close(out[2, 1], tangent_fraction(g[2, 1], B))


def test_chance_baseline_k_over_d():
    # For isotropic g, τ² ~ Beta(k/2, (d−k)/2): mean k/d, variance ab/((a+b)²(a+b+1)).
    d, k, n = 40, 6, 20_000
    B = random_basis(d=d, k=k)
    g = torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(1))
    tau2 = tangent_fraction(g, B).square()
    a, b = k / 2, (d - k) / 2
    se = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)) / n)
    assert abs(float(tau2.mean()) - k / d) < 5 * se


def test_score_cosine_matches_reference_and_edge_cases():
    g = torch.randn(7, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
    s = torch.randn(7, 5, dtype=F64, generator=torch.Generator().manual_seed(3))
    ref = torch.nn.functional.cosine_similarity(g, s, dim=-1)
    torch.testing.assert_close(score_cosine(g, s), ref, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(score_cosine(g, 3 * g), torch.ones(7, dtype=F64))
    torch.testing.assert_close(score_cosine(g, -g), -torch.ones(7, dtype=F64))
    assert torch.isnan(score_cosine(torch.zeros(5, dtype=F64), s[0]))
    assert score_cosine(g, s[0]).shape == (7,)  # broadcasting


def test_float32_qr_basis_passes_large_d():
    B = random_basis(2, d=3072, k=16, dtype=torch.float32)
    check_basis(B, 3072)  # must not raise
    assert orthonormality_tolerance(torch.float32, 3072) < 1e-3


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda B: B * 1.01, "orthonormal"),
        (lambda B: B[..., :-1, :], r"grad has 6 entries per point .* basis has 5 rows"),
        (lambda B: B.sum(-1), "shape"),
        (lambda B: B.masked_fill(torch.zeros_like(B, dtype=torch.bool).index_fill_(-1, torch.tensor([0]), True), float("nan")), "NaN"),
    ],
)
def test_bad_basis_one_line_error(make, match):
    B = random_basis(d=6, k=2)
    g = torch.ones(6, dtype=F64)
    with pytest.raises(ValueError, match=match) as info:
        alignment_ratio(g, make(B))
    assert "\n" not in str(info.value)


def test_bad_grad_errors():
    B = random_basis(d=6, k=2)
    with pytest.raises(ValueError, match="NaN"):
        tangent_fraction(torch.full((6,), float("nan"), dtype=F64), B)
    with pytest.raises(ValueError, match="last dimension"):
        score_cosine(torch.ones(3, dtype=F64), torch.ones(4, dtype=F64))
