"""Definition 1: manifold_robustness — exact cases, common random numbers, batching, validation."""

import math

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from manifold_lab.metrics import manifold_robustness, scalar_fn

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_basis(*batch, d, k, seed=0, dtype=F64):
    return torch.linalg.qr(torch.randn(*batch, d, k, generator=gen(seed), dtype=dtype)).Q


def tiny_mlp(d, seed=0):
    torch.manual_seed(seed)  # test-only: seeds the default initialisation
    return nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 1)).double()


@given(d=st.integers(3, 10), seed=st.integers(0, 1000))
def test_linear_function_exact_cases(d, seed):
    # f(x) = gᵀx: every draw gives exactly (σ gᵀP u)², so R̂/σ² is the same at
    # every σ (common random numbers) and a gradient inside T_x M has R_N = 0.
    k = d // 2
    B = random_basis(d=d, k=k, seed=seed)
    x = torch.randn(3, d, dtype=F64, generator=gen(seed + 1))
    g_tan = B @ torch.randn(k, dtype=F64, generator=gen(seed + 2))
    sig = torch.tensor([1e-3, 0.1, 10.0], dtype=F64)
    r = manifold_robustness(lambda z: z @ g_tan, x, B, sig, n_samples=16, generator=gen(seed))
    scaled = r.on_per_point / sig**2
    torch.testing.assert_close(scaled, scaled[:, :1].expand_as(scaled), rtol=1e-9, atol=0)
    # R_N is rounding only: each difference of two length-d dot products is off by at most
    # ~2·d·eps·‖input‖·‖g‖, with ‖input‖ ≤ ‖x‖ + σ‖u‖ and ‖u‖ < 3√d + 3 for these few draws.
    eps = torch.finfo(F64).eps
    size = float(x.norm(dim=1).max()) + 10.0 * (3 * math.sqrt(d) + 3)
    assert float(r.off_per_point.max()) <= (2 * d * eps * size * float(g_tan.norm())) ** 2


@given(d=st.integers(4, 10), seed=st.integers(0, 1000))
def test_linear_function_mean_within_mc_error(d, seed):
    # E[(gᵀP u)²] = σ²‖Pg‖² (docs/theory.md); per draw it is σ²‖Pg‖²·χ²₁, so the
    # standard error of the mean over M draws is σ²‖Pg‖²·√(2/M).
    k, M = 2, 4000
    B = random_basis(d=d, k=k, seed=seed)
    g = torch.randn(d, dtype=F64, generator=gen(seed + 3))
    x = torch.zeros(1, d, dtype=F64)
    r = manifold_robustness(lambda z: z @ g, x, B, 0.3, n_samples=M, generator=gen(seed))
    pt = (B.T @ g).square().sum() * 0.09
    pn = (g.square().sum() * 0.09) - pt
    for est, exact in ((r.on, pt), (r.off, pn)):
        assert abs(float(est[0] - exact)) <= 5 * float(exact) * math.sqrt(2 / M)


def test_chunking_and_point_batching_do_not_change_numbers():
    d, n = 8, 5
    model = tiny_mlp(d)
    f = lambda z: model(z).squeeze(-1)
    B = random_basis(n, d=d, k=3)
    x = torch.randn(n, d, dtype=F64, generator=gen(1))
    sig = [0.01, 0.1, 1.0]
    ref = manifold_robustness(f, x, B, sig, n_samples=7, generator=gen(5))
    for chunk in (1, 3, 10, 64, 10_000):
        r = manifold_robustness(f, x, B, sig, n_samples=7, generator=gen(5), chunk_size=chunk)
        torch.testing.assert_close(r.on_per_point, ref.on_per_point, rtol=1e-12, atol=0)
        torch.testing.assert_close(r.off_per_point, ref.off_per_point, rtol=1e-12, atol=0)
    # Draws are made point by point, so points run one at a time from the same
    # generator stream reproduce the batched run exactly.
    g = gen(5)
    single = [manifold_robustness(f, x[i : i + 1], B[i : i + 1], sig, n_samples=7, generator=g) for i in range(n)]
    torch.testing.assert_close(torch.cat([s.on_per_point for s in single]), ref.on_per_point, rtol=1e-12, atol=0)


def test_labels_follow_their_points():
    # scalar_fn picks each point's own label inside mixed batches: the batched
    # result equals running each point alone with its label.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.Softplus(), nn.Linear(12, 3)).double()
    x = torch.randn(4, 6, dtype=F64, generator=gen(2))
    y = torch.tensor([2, 0, 1, 2])
    B = random_basis(4, d=6, k=2)
    r = manifold_robustness(scalar_fn(model, y), x, B, [0.1, 0.5], n_samples=5, generator=gen(3), chunk_size=4)
    g = gen(3)
    for i in range(4):
        s = manifold_robustness(scalar_fn(model, y[i : i + 1]), x[i : i + 1], B[i : i + 1], [0.1, 0.5], n_samples=5, generator=g)
        torch.testing.assert_close(s.off_per_point[0], r.off_per_point[i], rtol=1e-12, atol=0)


def test_image_shaped_inputs_and_shared_basis():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(48, 1)).double()
    x = torch.randn(3, 1, 4, 4, dtype=F64, generator=gen(4))
    B = random_basis(d=16, k=4)
    f_img = lambda z: cnn(z).squeeze(-1)
    f_flat = lambda z: cnn(z.view(-1, 1, 4, 4)).squeeze(-1)
    r_img = manifold_robustness(f_img, x, B, [0.2], n_samples=6, generator=gen(0))
    r_flat = manifold_robustness(f_flat, x.flatten(1), B.expand(3, 16, 4), [0.2], n_samples=6, generator=gen(0))
    torch.testing.assert_close(r_img.on_per_point, r_flat.on_per_point, rtol=1e-12, atol=0)
    torch.testing.assert_close(r_img.off_per_point, r_flat.off_per_point, rtol=1e-12, atol=0)


def test_statistics_fields_dtype_and_no_graph():
    d, n = 6, 10
    model = tiny_mlp(d).float()
    f = lambda z: model(z).squeeze(-1)
    x = torch.randn(n, d, generator=gen(0))
    B = random_basis(n, d=d, k=2, dtype=torch.float32)
    r = manifold_robustness(f, x, B, torch.tensor([0.1, 1.0]), n_samples=8, generator=gen(1))
    assert r.on.dtype == torch.float32 and not r.on.requires_grad
    assert r.on.shape == r.off_stderr.shape == r.sigmas.shape == (2,)
    assert r.on_per_point.shape == (n, 2)
    torch.testing.assert_close(r.on, r.on_per_point.mean(0))
    torch.testing.assert_close(r.off_stderr, r.off_per_point.std(0) / math.sqrt(n))
    torch.testing.assert_close(r.ratio, r.off / r.on)
    assert set(r.as_dict()) >= {"on", "off", "ratio", "on_stderr", "off_stderr"}
    assert all(p.grad is None for p in model.parameters())
    # One point: the standard error is over draws instead.
    r1 = manifold_robustness(f, x[:1], B[:1], [0.1], n_samples=8, generator=gen(1))
    assert torch.isfinite(r1.on_stderr).all() and float(r1.on_stderr[0]) > 0


def test_antithetic_draws_are_plus_minus_pairs():
    # Antithetic draws are u_1..u_{M/2} then their negatives. For an odd increment
    # (Δ(−u) = −Δ(u)) both halves give the same squares, so the estimate equals the
    # plain estimate from the first M/2 draws; for a mixed-parity f it does not.
    d = 5
    B = random_basis(d=d, k=2)
    a = B[:, 0] + B[:, 1]
    x = torch.zeros(1, d, dtype=F64)
    odd = lambda z: (z @ a) ** 3 + 0.5 * (z @ a)
    mixed = lambda z: (z @ a) ** 2 + 0.5 * (z @ a)
    for f, equal in ((odd, True), (mixed, False)):
        anti = manifold_robustness(f, x, B, [0.5, 2.0], n_samples=10, generator=gen(0), antithetic=True)
        plain = manifold_robustness(f, x, B, [0.5, 2.0], n_samples=5, generator=gen(0))
        assert torch.allclose(anti.on, plain.on, rtol=1e-12, atol=0) == equal
    with pytest.raises(ValueError, match="even"):
        manifold_robustness(odd, x, B, [0.5], n_samples=9, antithetic=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigmas=[0.1, -1.0]), "sigmas must be finite and > 0"),
        (dict(sigmas=[0.0]), "sigmas must be finite and > 0"),
        (dict(sigmas=[[0.1]]), "1-D"),
        (dict(n_samples=0), "n_samples must be an integer >= 1"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(x=torch.full((2, 4), float("nan"), dtype=F64)), "x contains"),
        (dict(basis=torch.ones(4, 2, dtype=F64)), "orthonormal"),
        (dict(basis=torch.eye(4, dtype=F64)[:, :2].expand(3, 4, 2)), "n = 2"),
        (dict(f=lambda z: z), r"shape \[m\]"),
        (dict(generator="seed"), "torch.Generator"),
    ],
)
def test_bad_input_one_line_errors(kwargs, match):
    args = dict(f=lambda z: z.sum(1), x=torch.ones(2, 4, dtype=F64), basis=torch.eye(4, dtype=F64)[:, :2], sigmas=[0.1])
    args.update(kwargs)
    f, x, basis, sigmas = (args.pop(k) for k in ("f", "x", "basis", "sigmas"))
    with pytest.raises(ValueError, match=match) as info:
        manifold_robustness(f, x, basis, sigmas, **args)
    assert "\n" not in str(info.value)


@pytest.mark.gpu
def test_cuda_matches_dtype_and_device(cuda_device):
    d = 6
    B = random_basis(3, d=d, k=2).to(cuda_device)
    x = torch.randn(3, d, dtype=F64, device=cuda_device)
    g = torch.Generator(device=cuda_device).manual_seed(0)
    r = manifold_robustness(lambda z: z.sum(1), x, B, [0.1], n_samples=4, generator=g)
    assert r.on.device.type == "cuda" and r.on.dtype == F64
