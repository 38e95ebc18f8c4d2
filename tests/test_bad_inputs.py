"""Bad inputs a hostile user tried (issue 9, item 7): each is a one-line error or correct numbers."""

import math

import pytest
import torch

from manifold_lab import data, manifolds, metrics
from manifold_lab.models import MLP
from manifold_lab.training import CrossEntropy, make_objective, train


def _sphere_gradients(dtype):
    """Gradients of size 1e-4 at points of a 2-sphere in R^512, and the exact tau (float64)."""
    sphere = manifolds.Sphere(2, 512, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = sphere.sample(64, generator=gen, dtype=torch.float64)
    basis = sphere.tangent_basis(x)
    tangent = (basis @ torch.randn(64, 2, 1, generator=gen, dtype=torch.float64)).squeeze(-1)
    grad = 1e-4 * (tangent + 0.05 * torch.randn(64, 512, generator=gen, dtype=torch.float64))
    exact = metrics.tangent_fraction(grad, basis)
    return grad.to(dtype), basis.to(dtype), exact, metrics.alignment_ratio(grad, basis)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_metrics_match_float64(dtype):
    grad, basis, exact_tau, exact_a = _sphere_gradients(dtype)
    tau = metrics.tangent_fraction(grad, basis)
    a = metrics.alignment_ratio(grad, basis)
    assert bool(torch.isfinite(a).all())
    # Half precision rounds inputs to 2^-11 (bf16: 2^-8) relative; the squared norms
    # are then summed in float32, so tau and A are correct to a few input roundings.
    tol = 8 * float(torch.finfo(dtype).eps)
    torch.testing.assert_close(tau.double(), exact_tau, rtol=tol, atol=0)
    torch.testing.assert_close(a.double(), exact_a, rtol=4 * tol, atol=0)
    cos = metrics.score_cosine(grad, grad * 2)
    torch.testing.assert_close(cos.double(), torch.ones(64, dtype=torch.float64), rtol=tol, atol=0)
    pooled = metrics.pooled_alignment(grad, basis)
    assert math.isfinite(pooled) and pooled > 0


def test_pooled_alignment_is_the_ratio_of_sums():
    grad, basis, _, _ = _sphere_gradients(torch.float64)
    coords = torch.einsum("nd,ndk->nk", grad, basis)
    tan = coords.square().sum()
    nor = grad.square().sum() - tan  # fine in float64 here: A is far from 0
    assert metrics.pooled_alignment(grad, basis) == pytest.approx(float(nor / tan), rel=1e-12)
    assert math.isnan(metrics.pooled_alignment(torch.zeros(3, 512, dtype=torch.float64), basis[:3]))
    # A point with g = 0 adds nothing to either sum (its tangent fraction is NaN).
    with_zero = grad.clone()
    with_zero[5] = 0.0
    keep = torch.arange(64) != 5
    assert metrics.pooled_alignment(with_zero, basis) == pytest.approx(
        metrics.pooled_alignment(grad[keep], basis[keep]), rel=1e-12)
    with pytest.warns(metrics.ZeroGradientWarning, match="1 of 64"):
        assert math.isnan(float(metrics.tangent_fraction(with_zero, basis)[5]))


def _toy_data(n_classes_in_labels):
    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % n_classes_in_labels
    return x, y


@pytest.mark.parametrize("bad", [3, -1])
def test_train_rejects_labels_outside_the_class_range(bad):
    x, y = _toy_data(3)
    y[4] = bad
    model = MLP(5, 3, hidden=(4,))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        train(model, CrossEntropy(), data=(x, y), epochs=1, lr=1e-2, batch_size=6, progress=False)
    dataset = torch.utils.data.TensorDataset(x, y)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        train(model, CrossEntropy(), data=_ListDataset(dataset), epochs=1, lr=1e-2, batch_size=6,
              progress=False)


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


@pytest.mark.parametrize("n_labels", [3, 5])
def test_input_gradient_needs_one_label_per_point(n_labels):
    model = MLP(5, 3, hidden=(4,))
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="4 points"):
        metrics.input_gradient(model, x, torch.zeros(n_labels, dtype=torch.int64))


@pytest.mark.parametrize("max_distance", [math.nan, -1.0, "1", True])
def test_tangent_basis_rejects_bad_max_distance(max_distance):
    sphere = manifolds.Sphere(2, 8, seed=0)
    far = sphere.sample(2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3.0
    with pytest.raises(ValueError, match="max_distance"):
        sphere.tangent_basis(far, max_distance=max_distance)


@pytest.mark.parametrize("manifold", [
    manifolds.Sphere(2, 8, seed=0),
    manifolds.Product([manifolds.Sphere(1, 4, seed=0), manifolds.AffineSubspace(2, 4, seed=1)]),
    manifolds.ImmersedManifold(lambda z: torch.cat([z, z.square()], -1), 2, 4),
], ids=["sphere", "product", "immersed"])
def test_sample_refuses_integer_dtypes(manifold):
    with pytest.raises(ValueError, match="floating-point"):
        manifold.sample(3, dtype=torch.int64)
    dist = data.VonMisesFisherMixture(manifolds.Sphere(2, 8, seed=0), 3, 4.0, 0.01, seed=0)
    with pytest.raises(ValueError, match="floating-point"):
        dist.sample(3, dtype=torch.int64)


@pytest.mark.parametrize("strength", [True, False, "0.1", b"1"])
def test_make_objective_refuses_non_numbers(strength):
    with pytest.raises(ValueError, match="strength must be a number"):
        make_objective("gradient_norm", strength)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_robustness_is_not_flushed_to_zero(dtype):
    # f(x) = w.x with |w| ~ 1e-3 at x = 0 (so the inputs x + sigma u carry no
    # rounding of a large offset): at sigma = 0.1 each change is ~1e-4 and its
    # square ~1e-8, below float16's smallest subnormal (6e-8): formerly R = 0.
    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(64, 2, generator=gen, dtype=torch.float64)).Q
    x = torch.zeros(8, 64, dtype=torch.float64)
    w = 1e-3 * torch.randn(64, generator=gen, dtype=torch.float64)
    res = {}
    for dt in (dtype, torch.float64):
        f = lambda z: z @ w.to(z.dtype)  # noqa: E731
        res[dt] = metrics.manifold_robustness(f, x.to(dt), basis.to(dt), [0.1], n_samples=2048,
                                              generator=torch.Generator().manual_seed(1))
    # Half-precision draws are not the float64 draws, so both runs are independent
    # estimates of one mean: 8 x 2048 squared Gaussian projections each, relative
    # standard error <= sqrt(2 / 16384) = 1.1% per run; 8% is over 5 standard errors
    # of the difference (the half-precision rounding adds a few eps).
    tol = 0.08
    for part in ("on", "off"):
        half, exact = getattr(res[dtype], part), getattr(res[torch.float64], part)
        assert float(half[0]) == pytest.approx(float(exact[0]), rel=tol)
