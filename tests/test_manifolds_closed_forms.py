"""Closed-form facts of the individual manifolds, checked against independent formulas."""

import math

import pytest
import torch

from manifold_lab.manifolds import AffineSubspace, Sphere


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_sphere_attributes_and_local_coordinates():
    s = Sphere(3, 12, radius=2.5, seed=7)
    assert s.center.shape == (12,) and s.frame.shape == (12, 4) and s.radius == 2.5
    assert s.center.dtype == torch.float64 and s.frame.dtype == torch.float64
    x = s.sample(50, generator=_gen(), dtype=torch.float64)
    # |x - c| = r and x - c lies in the frame's span: checked without the class's own projections.
    centred = x - s.center
    torch.testing.assert_close(centred.norm(dim=-1), torch.full((50,), 2.5, dtype=torch.float64))
    coef = torch.linalg.lstsq(s.frame, centred.T).solution
    torch.testing.assert_close(s.frame @ coef, centred.T)
    torch.testing.assert_close(s.from_local(s.to_local(x)), x)


def test_sphere_nearest_point_and_distance_match_geometry():
    s = Sphere(2, 6, radius=1.5, seed=1)
    x = torch.randn(20, 6, generator=_gen(1), dtype=torch.float64) + s.center
    centred = x - s.center
    in_plane = s.frame @ (s.frame.T @ centred.T)
    out_plane = centred.T - in_plane
    expected_dist = torch.sqrt(out_plane.square().sum(0) + (in_plane.norm(dim=0) - 1.5) ** 2)
    torch.testing.assert_close(s.distance(x), expected_dist)
    near = s.nearest_point(x)
    torch.testing.assert_close((near - x).norm(dim=-1), expected_dist)
    assert s.distance(near).max() < 1e-12


def test_sphere_uniform_measure_moments():
    # Uniform on S^k: E[u] = 0 and E[u u^T] = I/(k+1) in local coordinates; with n draws the
    # standard error of each entry is <= 1/sqrt(n), so 5/sqrt(n) is a 5-sigma bound.
    k, n = 2, 20000
    s = Sphere(k, 5, radius=1.0, seed=2)
    u = s.to_local(s.sample(n, generator=_gen(3), dtype=torch.float64))
    bound = 5 / math.sqrt(n)
    assert u.mean(0).abs().max() < bound
    assert (u.T @ u / n - torch.eye(k + 1, dtype=torch.float64) / (k + 1)).abs().max() < bound


def test_affine_from_frame_spans_given_directions():
    q = torch.linalg.qr(torch.randn(9, 4, generator=_gen(4), dtype=torch.float64)).Q
    offset = torch.randn(9, generator=_gen(5), dtype=torch.float64)
    a = AffineSubspace.from_frame(q, offset)
    assert a.intrinsic_dim == 4 and a.ambient_dim == 9
    torch.testing.assert_close(a.frame, q)
    torch.testing.assert_close(a.offset, offset)
    # Samples are offset + q z with z ~ N(0, I): their coordinates along q have mean 0, variance 1
    # (5-sigma bounds for 4000 draws: mean 5/sqrt(n), variance 5 sqrt(2/n)).
    z = (a.sample(4000, generator=_gen(6), dtype=torch.float64) - offset) @ q
    assert z.mean(0).abs().max() < 5 / math.sqrt(4000)
    assert (z.var(0) - 1).abs().max() < 5 * math.sqrt(2 / 4000)


def test_seeded_affine_offset_is_the_point_nearest_the_origin():
    a = AffineSubspace(3, 7, seed=11)
    assert (a.frame.T @ a.offset).abs().max() < 1e-12
    assert a.offset.norm() > 0.1


@pytest.mark.parametrize("call, match", [
    (lambda: Sphere(3, 3), "intrinsic_dim must be < ambient_dim"),
    (lambda: Sphere(2, 10, radius=0.0), "radius"),
    (lambda: Sphere(2, 10, radius=-1.0), "radius"),
    (lambda: AffineSubspace(5, 5), "intrinsic_dim must be < ambient_dim"),
    (lambda: AffineSubspace(0, 5), "intrinsic_dim"),
    (lambda: AffineSubspace.from_frame(torch.ones(5, 2)), "orthonormal"),
    (lambda: Sphere(2, 6).tangent_basis(torch.zeros(4, 5)), r"\[\.\.\., 6\]"),
    (lambda: Sphere(2, 6).tangent_basis(torch.full((6,), float("nan"))), "NaN"),
    (lambda: Sphere(2, 6).tangent_basis(Sphere(2, 6).center.float() + 5.0), "lie off the Sphere"),
    (lambda: Sphere(2, 6).tangent_basis(Sphere(2, 6).center, max_distance=math.inf), "centre"),
])
def test_bad_input_is_one_line_value_error(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


# Sampling measures: the probability integral transform of each sampled parameter through its exact
# CDF must be Uniform(0, 1). The generator is fixed, so the KS p-value is a fixed number; 1e-3 is the
# level at which a correct sampler would fail one seed in a thousand.
KS_LEVEL = 1e-3


def test_torus_area_measure():
    from scipy import stats

    from manifold_lab.manifolds import Torus

    big, small = 2.0, 0.9
    t = Torus(5, radii=(big, small), seed=3)
    y = (t.sample(20000, generator=_gen(8), dtype=torch.float64) - t.center) @ t.frame
    theta = torch.atan2(y[:, 1], y[:, 0]) % (2 * math.pi)
    phi = torch.atan2(y[:, 2], y[:, :2].norm(dim=-1) - big) % (2 * math.pi)
    # Area density of phi is (1 + (r/R) cos phi) / (2 pi): CDF (phi + (r/R) sin phi) / (2 pi).
    cdf_phi = (phi + small / big * torch.sin(phi)) / (2 * math.pi)
    assert stats.kstest(cdf_phi.numpy(), "uniform").pvalue > KS_LEVEL
    assert stats.kstest((theta / (2 * math.pi)).numpy(), "uniform").pvalue > KS_LEVEL
    # The parametrisation-uniform law (phi uniform) must be rejected: the test has power.
    assert stats.kstest((phi / (2 * math.pi)).numpy(), "uniform").pvalue < KS_LEVEL


def test_swiss_roll_area_measure():
    from scipy import stats

    from manifold_lab.manifolds import SwissRoll

    r = SwissRoll(4, seed=5)
    y = (r.sample(20000, generator=_gen(9), dtype=torch.float64) - r.center) @ r.frame
    t, h = torch.hypot(y[:, 0], y[:, 2]), y[:, 1]

    def arc(s):  # arc length of (s cos s, s sin s), written out independently
        return 0.5 * (s * torch.sqrt(1 + s * s) + torch.asinh(s))

    lo, hi = (arc(torch.tensor(v, dtype=torch.float64)) for v in r.t_range)
    assert stats.kstest(((arc(t) - lo) / (hi - lo)).numpy(), "uniform").pvalue > KS_LEVEL
    assert stats.kstest((h / r.height).numpy(), "uniform").pvalue > KS_LEVEL
    t0, t1 = r.t_range
    assert stats.kstest(((t - t0) / (t1 - t0)).numpy(), "uniform").pvalue < KS_LEVEL


def test_product_mask_construction_places_factors_in_coordinate_blocks():
    from manifold_lab.manifolds import Product

    sphere, affine = Sphere(2, 4, seed=1), AffineSubspace(2, 5, seed=2)
    p = Product([sphere, affine], 12)
    assert p.intrinsic_dim == 4 and p.ambient_dim == 12
    x = p.sample(6, generator=_gen(0), dtype=torch.float64)
    # Coordinates 0-3 hold the sphere, 4-8 the affine factor, 9-11 are zero (exactly).
    assert torch.equal(x[:, 9:], torch.zeros(6, 3, dtype=torch.float64))
    torch.testing.assert_close((x[:, :4] - sphere.center).norm(dim=-1), torch.ones(6, dtype=torch.float64))
    basis = p.tangent_basis(x)
    assert torch.equal(basis[:, 4:, :2], torch.zeros(6, 8, 2, dtype=torch.float64))
    assert torch.equal(basis[:, :4, 2:], torch.zeros(6, 4, 2, dtype=torch.float64))
    torch.testing.assert_close(basis[:, 4:9, 2:], affine.frame.expand(6, 5, 2))
    parts = p.split(x)
    torch.testing.assert_close(p.combine(parts), x)
