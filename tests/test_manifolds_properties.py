"""One shared set of property tests, run on every manifold kind.

Ground truth never comes from the code under test: each kind has an independent
test-side parametrisation ``param(u) -> x`` (built from the public attributes
``frame``/``center``/``offset`` only) and a test-side way of reading the
parameters ``u0`` of a point ``x``. Tangent spaces are checked against float64
central finite differences of ``param``; "on the manifold" means
``param(u0(x)) == x``.
"""

import math
from dataclasses import dataclass
from typing import Callable

import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from manifold_lab.manifolds import (AffineSubspace, ImmersedManifold, Manifold, Product, Sphere,
                                    SwissRoll, Torus)

KINDS = ["affine", "sphere", "torus", "swiss_roll", "product", "immersed"]
DTYPES = [torch.float32, torch.float64]
F64 = torch.float64

# Finite differences: central step h has truncation error h^2/6 |param'''| and rounding
# error eps |x| / h. With h = 1e-5, |param'''| <= 15 (Swiss roll, t <= 4.5 pi) and |x| <= 40,
# both are <= 3e-9 relative to |param'| >= 1, so the FD span is within ~1e-8 of the truth;
# FD_TOL = 1e-7 leaves a 10x margin.
FD_STEP = 1e-5
FD_TOL = 1e-7


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _tol(dtype, scale=1.0):
    """Rounding tolerance: 100 eps(dtype) relative to ``scale`` (a few dozen flops of error)."""
    return 100 * torch.finfo(dtype).eps * scale


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    manifold: Manifold
    # x [d] float64 on M  ->  (u0 [k], param: [..., k] -> [..., d]) with param(u0) = x
    chart: Callable[[torch.Tensor], tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]
    scale: float  # size of the points, for rounding tolerances


def _affine_chart(frame, offset):
    def chart(x):
        return (x - offset) @ frame, lambda u: offset + u @ frame.T
    return chart


def _sphere_chart(s):
    def chart(x):
        y0 = (x - s.center) @ s.frame
        # Complement of y0 from scipy (independent of the library's Householder basis).
        comp = torch.from_numpy(scipy.linalg.null_space(y0[None].numpy()))
        def param(u):
            y = y0 / y0.norm() + u @ comp.T
            return s.center + (s.radius * y / y.norm(dim=-1, keepdim=True)) @ s.frame.T
        return torch.zeros(s.intrinsic_dim, dtype=F64), param
    return chart


def _torus_chart(t):
    big, small = t.radii
    def param(u):
        ring = big + small * torch.cos(u[..., 1])
        y = torch.stack([ring * torch.cos(u[..., 0]), ring * torch.sin(u[..., 0]),
                         small * torch.sin(u[..., 1])], -1)
        return t.center + y @ t.frame.T
    def chart(x):
        y = (x - t.center) @ t.frame
        rho = y[:2].norm()
        return torch.stack([torch.atan2(y[1], y[0]), torch.atan2(y[2], rho - big)]), param
    return chart


def _roll_chart(r):
    def param(u):
        t, h = u[..., 0], u[..., 1]
        return r.center + torch.stack([t * torch.cos(t), h, t * torch.sin(t)], -1) @ r.frame.T
    def chart(x):
        y = (x - r.center) @ r.frame
        return torch.stack([torch.hypot(y[0], y[2]), y[1]]), param
    return chart


def _product_chart(p, factor_charts):
    frames = p.factor_frames
    offset = p.placement.offset
    ks = [f.intrinsic_dim for f in p.factors]
    def chart(x):
        u0s, params = zip(*(c((x - offset) @ fr) for c, fr in zip(factor_charts, frames)))
        def param(u):
            out, start = offset, 0
            for prm, fr, k in zip(params, frames, ks):
                out = out + prm(u[..., start:start + k]) @ fr.T
                start += k
            return out
        return torch.cat(u0s), param
    return chart


def _graph_embedding(k, d, seed):
    """A curved immersed manifold with an exact chart: the rotated graph ``Q (z, g(z))``."""
    g = _gen(seed)
    rot = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64)).Q
    w = torch.randn(d - k, k, generator=g, dtype=F64)
    b = torch.randn(d - k, generator=g, dtype=F64)
    def embed(z):
        graph = torch.cat([z, torch.tanh(z @ w.to(z.dtype).T + b.to(z.dtype))], -1)
        return graph @ rot.to(z.dtype).T
    def chart(x):
        return (x @ rot.to(x.dtype))[..., :k]
    return embed, chart


def make_case(kind: str, seed: int, extra_dim: int) -> Case:
    """A manifold of ``kind`` with its independent test-side chart; ``d`` grows with ``extra_dim``."""
    if kind == "affine":
        m = AffineSubspace(2 + seed % 3, 5 + extra_dim, seed=seed)
        return Case(m, _affine_chart(m.frame, m.offset), 4.0)
    if kind == "sphere":
        m = Sphere(1 + seed % 3, 4 + extra_dim, radius=0.5 + seed % 4, seed=seed)
        return Case(m, _sphere_chart(m), 5.0)
    if kind == "torus":
        m = Torus(3 + extra_dim, radii=(2.0 + seed % 2, 0.5 + 0.25 * (seed % 3)), seed=seed)
        return Case(m, _torus_chart(m), 5.0)
    if kind == "swiss_roll":
        m = SwissRoll(3 + extra_dim, seed=seed)
        return Case(m, _roll_chart(m), 40.0)
    if kind == "product":
        sphere, affine = Sphere(2, 4, seed=seed), AffineSubspace(1, 3, seed=seed + 1)
        m = Product([sphere, affine], 7 + extra_dim, seed=seed if seed % 2 else None)
        return Case(m, _product_chart(m, [_sphere_chart(sphere), _affine_chart(affine.frame, affine.offset)]),
                    6.0)
    if kind == "immersed":
        k, d = 2 + seed % 2, 5 + extra_dim
        embed, chart_fn = _graph_embedding(k, d, seed)
        m = ImmersedManifold(embed, k, d, chart=chart_fn)
        return Case(m, lambda x: (chart_fn(x), embed), 6.0)
    raise AssertionError(kind)


seeds = st.integers(0, 2**31)
extra_dims = st.integers(0, 6)


def _points(case, n, seed, dtype=F64):
    return case.manifold.sample(n, generator=_gen(seed), dtype=dtype)


def _projector(basis):
    return basis @ basis.mT


def _subspace_distance(a, b):
    """Spectral norm of the difference of the orthogonal projectors onto range(a), range(b)."""
    return torch.linalg.matrix_norm(_projector(a) - _projector(b), ord=2)


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@given(seed=seeds, extra=extra_dims)
def test_bases_are_orthonormal_with_the_right_shape(kind, dtype, seed, extra):
    case = make_case(kind, seed, extra)
    m = case.manifold
    x = _points(case, 5, seed, dtype)
    basis = m.tangent_basis(x)
    assert basis.shape == (5, m.ambient_dim, m.intrinsic_dim) and basis.dtype == dtype
    eye = torch.eye(m.intrinsic_dim, dtype=dtype)
    # Gram entries sum d products of O(1) numbers: error <= d eps per entry, well within _tol.
    assert (basis.mT @ basis - eye).abs().max() <= _tol(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@given(seed=seeds, extra=extra_dims)
def test_projections_reconstruct_are_idempotent_and_orthogonal(kind, dtype, seed, extra):
    case = make_case(kind, seed, extra)
    m = case.manifold
    x = _points(case, 4, seed, dtype)
    v = torch.randn(4, m.ambient_dim, generator=_gen(seed + 1), dtype=dtype)
    w = torch.randn(4, m.ambient_dim, generator=_gen(seed + 2), dtype=dtype)
    pt, pn = m.project_tangent(x, v), m.project_normal(x, v)
    tol = _tol(dtype, 1 + v.norm(dim=-1).max())
    assert (pt + pn - v).abs().max() <= tol
    assert (m.project_tangent(x, pt) - pt).abs().max() <= tol
    assert (m.project_normal(x, pn) - pn).abs().max() <= tol
    assert (m.project_tangent(x, pn)).abs().max() <= tol
    # P_T is self-adjoint (an orthogonal projector): <P_T v, w> = <v, P_T w>.
    assert ((pt * w).sum(-1) - (v * m.project_tangent(x, w)).sum(-1)).abs().max() <= tol * w.norm()
    # Batch broadcasting: one vector against a batch of points.
    one = m.project_tangent(x, v[0])
    assert one.shape == x.shape and (one[0] - pt[0]).abs().max() <= tol
    # The projector agrees with the basis.
    basis = m.tangent_basis(x)
    assert (torch.einsum("ndk,nk->nd", basis, torch.einsum("ndk,nd->nk", basis, v)) - pt).abs().max() <= tol


@pytest.mark.parametrize("kind", KINDS)
@given(seed=seeds, extra=extra_dims)
def test_tangent_spaces_match_float64_finite_differences(kind, seed, extra):
    case = make_case(kind, seed, extra)
    m = case.manifold
    x = _points(case, 3, seed)
    basis = m.tangent_basis(x)
    for i in range(3):
        u0, param = case.chart(x[i])
        steps = FD_STEP * torch.eye(m.intrinsic_dim, dtype=F64)
        fd = ((param(u0 + steps) - param(u0 - steps)) / (2 * FD_STEP)).T  # [d, k]
        fd_basis = torch.linalg.qr(fd).Q
        assert _subspace_distance(basis[i], fd_basis) < FD_TOL


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@given(seed=seeds, extra=extra_dims)
def test_samples_lie_on_the_manifold(kind, dtype, seed, extra):
    case = make_case(kind, seed, extra)
    m = case.manifold
    x = _points(case, 16, seed, dtype)
    assert x.shape == (16, m.ambient_dim) and x.dtype == dtype
    x64 = x.double()
    for xi in x64:
        u0, param = case.chart(xi)
        # A float32 sample is the float64 point rounded: |error| <= eps32 |x|, and re-reading its
        # parameters moves it by the same order.
        assert (param(u0) - xi).norm() <= _tol(dtype, case.scale)
    if kind == "swiss_roll":
        u = torch.stack([case.chart(xi)[0] for xi in x64])
        assert u[:, 0].min() >= m.t_range[0] - 1e-4 and u[:, 0].max() <= m.t_range[1] + 1e-4
        assert u[:, 1].min() >= -1e-4 and u[:, 1].max() <= m.height + 1e-4
    try:
        assert m.distance(x).max() <= _tol(dtype, case.scale)
        assert (m.nearest_point(x) - x).abs().max() <= _tol(dtype, case.scale)
    except NotImplementedError:
        assert kind in ("swiss_roll", "immersed")


@pytest.mark.parametrize("kind", ["affine", "sphere", "torus", "product"])
@given(seed=seeds, extra=extra_dims, push=st.floats(0.01, 0.4))
def test_nearest_point_is_on_the_manifold_normal_and_closest(kind, seed, extra, push):
    case = make_case(kind, seed, extra)
    m = case.manifold
    on = _points(case, 8, seed)
    # Push off along a random direction, by less than the reach (0.4 < smallest radius 0.5).
    direction = torch.randn(8, m.ambient_dim, generator=_gen(seed + 3), dtype=F64)
    x = on + push * direction / direction.norm(dim=-1, keepdim=True)
    near = m.nearest_point(x)
    assert m.distance(near).max() < 1e-10
    for ni in near:
        u0, param = case.chart(ni)
        assert (param(u0) - ni).norm() < 1e-10
    # First-order optimality: x - near is normal at near; and dist(x) = |x - near| <= |x - on|.
    assert m.project_tangent(near, x - near).abs().max() < 1e-10
    torch.testing.assert_close(m.distance(x), (x - near).norm(dim=-1))
    assert bool((m.distance(x) <= (x - on).norm(dim=-1) + 1e-12).all())
    # The basis at an off-manifold x (with max_distance) is the basis at its nearest point.
    torch.testing.assert_close(_projector(m.tangent_basis(x, max_distance=1.0)),
                               _projector(m.tangent_basis(near)))


@pytest.mark.parametrize("kind", KINDS)
@given(seed=seeds, extra=extra_dims)
def test_equivariant_under_isometries(kind, seed, extra):
    case = make_case(kind, seed, extra)
    m = case.manifold
    d = m.ambient_dim
    rot = torch.linalg.qr(torch.randn(d, d, generator=_gen(seed + 4), dtype=F64)).Q
    shift = torch.randn(d, generator=_gen(seed + 5), dtype=F64)
    image = m.transformed(rot, shift)
    x = _points(case, 6, seed)
    x_img = x @ rot.T + shift
    torch.testing.assert_close(_points(Case(image, None, 0), 6, seed), x_img)
    rotated_proj = rot @ _projector(m.tangent_basis(x)) @ rot.T
    torch.testing.assert_close(_projector(image.tangent_basis(x_img)), rotated_proj)
    v = torch.randn(6, d, generator=_gen(seed + 6), dtype=F64)
    torch.testing.assert_close(image.project_normal(x_img, v @ rot.T), m.project_normal(x, v) @ rot.T)
    try:
        off = x + 0.1 * v / v.norm(dim=-1, keepdim=True)
        torch.testing.assert_close(image.distance(off @ rot.T + shift), m.distance(off))
        torch.testing.assert_close(image.nearest_point(off @ rot.T + shift), m.nearest_point(off) @ rot.T + shift)
    except NotImplementedError:
        assert kind in ("swiss_roll", "immersed")


def _frame_of(kind, seed):
    """The seeded frame of a manifold of ``kind`` with fixed dims."""
    if kind == "product":
        return Product([Sphere(2, 4), AffineSubspace(1, 3)], 9, seed=seed).placement.frame
    return {"affine": lambda: AffineSubspace(2, 6, seed=seed), "sphere": lambda: Sphere(2, 6, seed=seed),
            "torus": lambda: Torus(6, seed=seed), "swiss_roll": lambda: SwissRoll(6, seed=seed)}[kind]().frame


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "immersed"])  # immersed: no library seed
@given(seed=st.integers(0, 2**31 - 1))
@settings(max_examples=10)
def test_same_seed_same_manifold_different_seed_different(kind, seed):
    a, b = make_case(kind, seed, 2).manifold, make_case(kind, seed, 2).manifold
    xa, xb = a.sample(5, generator=_gen(0), dtype=F64), b.sample(5, generator=_gen(0), dtype=F64)
    assert torch.equal(xa, xb)
    assert torch.equal(a.tangent_basis(xa), b.tangent_basis(xb))
    assert torch.equal(_frame_of(kind, seed), _frame_of(kind, seed))
    assert not torch.allclose(_frame_of(kind, seed), _frame_of(kind, seed + 1))


@pytest.mark.parametrize("kind", KINDS)
def test_sampling_is_reproducible_and_dtype_consistent(kind):
    case = make_case(kind, 3, 2)
    m = case.manifold
    x64 = m.sample(10, generator=_gen(9), dtype=F64)
    x32 = m.sample(10, generator=_gen(9), dtype=torch.float32)
    assert torch.equal(x64, m.sample(10, generator=_gen(9), dtype=F64))
    # Same generator state -> the float32 sample is the float64 one, rounded (immersed: embed
    # runs in float32, so only to float32 accuracy).
    assert (x32.double() - x64).abs().max() <= _tol(torch.float32, case.scale)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kind", KINDS)
def test_bad_points_raise_one_line_value_errors(kind):
    case = make_case(kind, 1, 3)
    m = case.manifold
    x = _points(case, 3, 0)
    bad = [
        torch.zeros(3, m.ambient_dim + 1, dtype=F64),          # wrong ambient dimension
        torch.full_like(x, float("nan")),                        # NaN
        x.clone().index_fill_(1, torch.tensor([0]), float("inf")),  # inf
        torch.zeros(3, m.ambient_dim, dtype=torch.int64),        # not floating point
    ]
    # A far point: move along a normal direction by 10 x the manifold's size.
    normal = m.project_normal(x, torch.randn(3, m.ambient_dim, generator=_gen(2), dtype=F64))
    bad.append(x + 10 * case.scale * normal / normal.norm(dim=-1, keepdim=True))
    for b in bad:
        with pytest.raises(ValueError) as info:
            m.tangent_basis(b)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        m.project_tangent(x, torch.zeros(3, m.ambient_dim + 2, dtype=F64))


def test_degenerate_points_have_no_nearest_point():
    torus = Torus(5, radii=(2.0, 0.5), seed=4)
    on_axis = torus.center + 0.3 * torus.frame[:, 2]
    on_core = torus.center + 2.0 * torus.frame[:, 0]
    for p in (on_axis, on_core):
        with pytest.raises(ValueError, match="axis or its core circle"):
            torus.tangent_basis(p, max_distance=math.inf)
        with pytest.raises(ValueError, match="no unique nearest point"):
            torus.nearest_point(p)
    # The distance itself is well defined there: sqrt(R^2 + z^2) - r on the axis, r on the core.
    torch.testing.assert_close(torus.distance(on_axis), torch.tensor(math.hypot(2.0, 0.3) - 0.5, dtype=F64))
    torch.testing.assert_close(torus.distance(on_core), torch.tensor(0.5, dtype=F64))
    sphere = Sphere(2, 5, seed=1)
    with pytest.raises(ValueError, match="centre"):
        sphere.nearest_point(sphere.center)
    torch.testing.assert_close(sphere.distance(sphere.center), torch.tensor(1.0, dtype=F64))


@pytest.mark.parametrize("call, match", [
    (lambda: Torus(2), "intrinsic_dim must be < ambient_dim"),
    (lambda: Torus(5, radii=(1.0, 1.0)), "R > r"),
    (lambda: Torus(5, radii=(1.0, -1.0)), "radii"),
    (lambda: SwissRoll(2), "intrinsic_dim must be < ambient_dim"),
    (lambda: SwissRoll(5, t_range=(3.0, 1.0)), "t0 < t1"),
    (lambda: SwissRoll(5, height=0.0), "height"),
    (lambda: Sphere(2, 2), "intrinsic_dim must be < ambient_dim"),
    (lambda: Sphere(2, 10, seed=-1), "seed"),
    (lambda: Product([Sphere(1, 3)]), "at least two"),
    (lambda: Product([Sphere(1, 3), Sphere(1, 3)], 5), "ambient_dim must be >="),
    (lambda: ImmersedManifold(lambda z: z, 4, 4), "intrinsic_dim must be < ambient_dim"),
    (lambda: ImmersedManifold(lambda z: z, 2, 4).embed(torch.zeros(3, 2)), r"map \[n, 2\] to \[n, 4\]"),
    (lambda: Sphere(2, 5).sample(0), "n must be"),
    (lambda: Sphere(2, 5).sample(3, generator=123), "generator"),
])
def test_bad_construction_raises_one_line_value_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
