"""The Distribution contract, checked on every distribution kind.

Exact references: autograd of the closed-form log-densities (float64), the
identities between the methods, and the manifold each distribution declares.
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from manifold_lab.data import (
    Distribution,
    GaussianClassImages,
    GaussianSignalDistractor,
    LinearSignalDistractor,
    MaskedImageSignalDistractor,
    VonMisesFisherMixture,
)
from manifold_lab.data._directions import random_orthonormal
from manifold_lab.manifolds import Sphere

EPS = torch.finfo(torch.float64).eps


def _linear_with_offset():
    gen = torch.Generator().manual_seed(5)
    frame = random_orthonormal(12, 5, gen)
    means = torch.randn(3, 2, generator=gen, dtype=torch.float64) * 2
    return LinearSignalDistractor(frame[:, :2], frame[:, 2:], means, offset=torch.randn(12, generator=gen,
                                  dtype=torch.float64), signal_std=0.7, distractor_std=1.9, noise_std=0.3,
                                  class_probs=[0.2, 0.5, 0.3])


FACTORIES = {
    "gsd": lambda: GaussianSignalDistractor(3, 4, 16, n_classes=3, noise_std=0.2, seed=1),
    "linear_offset_prior": _linear_with_offset,
    "vmf_circle_R2": lambda: VonMisesFisherMixture(Sphere(1, 2, radius=1.5, seed=2), 3, 2.0, 0.3, seed=1),
    "vmf_S2_R10": lambda: VonMisesFisherMixture(Sphere(2, 10, seed=3), 4, 4.0, 0.05, seed=0),
    "vmf_S4_R8_small_noise": lambda: VonMisesFisherMixture(Sphere(4, 8, radius=2.0, seed=4), 3, 10.0, 1e-3,
                                                           seed=2, class_probs=[0.5, 0.25, 0.25]),
    "vmf_S33_R40": lambda: VonMisesFisherMixture(Sphere(33, 40, seed=0), 5, 30.0, 0.1, seed=0),
    "masked_images": lambda: MaskedImageSignalDistractor((2, 6, 6), n_classes=3, signal_dim=3,
                                                         distractor_dim=4, noise_std=0.1, seed=0),
    "gaussian_class_images": lambda: GaussianClassImages((2, 10, 10), n_classes=3, shared_dim=3, bump_dim=2,
                                                         noise_std=0.1, seed=0, class_probs=[0.2, 0.5, 0.3]),
}


@pytest.fixture(scope="module", params=list(FACTORIES))
def dist(request):
    return FACTORIES[request.param]()


def _points(dist, n=32, seed=0, spread=1.0):
    """Samples, plus a few points well off the data (spread x the noise scale)."""
    gen = torch.Generator().manual_seed(seed)
    x, y = dist.sample(n, generator=gen, dtype=torch.float64)
    far = x[:4] + spread * torch.randn(4, dist.ambient_dim, generator=gen, dtype=torch.float64)
    return torch.cat([x, far]), torch.cat([y, y[:4]])


def _autograd_rows(fn, x):
    """``d fn(x)[..., j] / dx`` for every column j: ``[n, d] -> [n, J, d]`` (points independent)."""
    x = x.clone().requires_grad_(True)
    out = fn(x)
    rows = [torch.autograd.grad(out[:, j].sum(), x, retain_graph=True)[0] for j in range(out.shape[1])]
    return torch.stack(rows, dim=1)


def _tolerance(dist, x):
    """Rounding bound for comparing two float64 evaluations of a gradient at ``x``.

    Every path to the gradient passes through terms as large as the unsplit
    Gaussian part ``(x - c) / sigma^2`` (c the centre or offset; plus r / sigma^2 on
    a sphere) and through the class scores; a length-d dot product contributes
    <= d eps relative, so two evaluations differ by <= 10 d eps S with S the
    largest of those magnitudes.
    """
    origin = dist.center if hasattr(dist, "center") else dist.offset
    shared = ((x - origin.to(x)).norm(dim=-1, keepdim=True) + getattr(dist, "radius", 0.0)) / dist.noise_std**2
    scale = torch.maximum(shared, dist.class_score(x).norm(dim=-1).amax(-1, keepdim=True))
    return 10 * dist.ambient_dim * EPS * (1.0 + scale)


def test_is_a_distribution(dist):
    assert isinstance(dist, Distribution)
    assert dist.n_classes >= 2 and dist.log_prior.shape == (dist.n_classes,)
    assert math.isclose(dist.log_prior.exp().sum().item(), 1.0, rel_tol=1e-12)
    assert dist.manifold.ambient_dim == dist.ambient_dim


def test_score_is_autograd_of_log_prob(dist):
    x, _ = _points(dist)
    auto = _autograd_rows(lambda v: dist.log_prob(v)[:, None], x)[:, 0]
    assert ((dist.score(x) - auto).norm(dim=-1, keepdim=True) <= _tolerance(dist, x)).all()


def test_class_score_is_autograd_of_class_log_prob(dist):
    x, _ = _points(dist)
    auto = _autograd_rows(dist.class_log_prob, x)
    err = (dist.class_score(x) - auto).norm(dim=-1)
    assert (err <= _tolerance(dist, x)).all()


def test_posterior_grad_is_autograd_of_log_posterior(dist):
    x, y = _points(dist)
    auto = _autograd_rows(dist.log_posterior, x)  # [n, C, d]
    grads = dist.posterior_grads(x)
    assert ((grads - auto).norm(dim=-1) <= _tolerance(dist, x)).all()
    own = dist.posterior_grad(x, y)
    assert torch.allclose(own, grads[torch.arange(len(y)), y], rtol=0, atol=1e-12)
    # The contract identity grad log p(y|x) = class_score[y] - score.
    diff = dist.class_score(x)[torch.arange(len(y)), y] - dist.score(x)
    assert ((own - diff).norm(dim=-1, keepdim=True) <= _tolerance(dist, x)).all()


def test_log_prob_posterior_identities(dist):
    x, _ = _points(dist)
    cl = dist.class_log_prob(x)
    prior = dist.log_prior.to(x)
    lp = dist.log_prob(x)
    assert torch.allclose(lp, torch.logsumexp(cl + prior, -1), rtol=1e-12, atol=1e-10)
    post = dist.log_posterior(x)
    assert torch.allclose(post, cl + prior - lp[:, None], rtol=1e-10, atol=1e-9)
    assert torch.allclose(post.exp().sum(-1), torch.ones(len(x), dtype=x.dtype), atol=1e-12)


def test_batch_shapes_and_dtypes(dist):
    x, _ = _points(dist, n=12)
    xb = x[:12].reshape(3, 4, dist.ambient_dim)
    c, d = dist.n_classes, dist.ambient_dim
    for dtype in (torch.float32, torch.float64):
        v = xb.to(dtype)
        assert dist.class_log_prob(v).shape == (3, 4, c) and dist.class_log_prob(v).dtype == dtype
        assert dist.log_prob(v).shape == (3, 4)
        assert dist.log_posterior(v).shape == (3, 4, c)
        assert dist.score(v).shape == (3, 4, d) and dist.score(v).dtype == dtype
        assert dist.class_score(v).shape == (3, 4, c, d)
        assert dist.posterior_grad(v, torch.zeros(3, 4, dtype=torch.long)).shape == (3, 4, d)
        assert dist.posterior_grad(v, 1).shape == (3, 4, d)
    # Batched = one at a time.
    flat = dist.log_posterior(x[:12])
    assert torch.allclose(dist.log_posterior(xb).reshape(12, c), flat, rtol=1e-13, atol=1e-13)
    # float32 agrees with float64 to float32 precision (relative to the log-density scale).
    lp32 = dist.log_prob(x.float()).double()
    lp64 = dist.log_prob(x)
    assert ((lp32 - lp64).abs() <= 1e-4 * (1 + lp64.abs())).all()


def test_sampling_contract(dist):
    gen = torch.Generator().manual_seed(3)
    x, y = dist.sample(50, generator=gen)
    assert x.shape == (50, dist.ambient_dim) and x.dtype == torch.float32
    assert y.shape == (50,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() < dist.n_classes
    x1, y1 = dist.sample(50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, x1) and torch.equal(y, y1)
    x2, y2 = dist.sample(50, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(x, x2)
    # on_manifold: same labels and latents, no noise, points on the declared manifold.
    m, ym = dist.sample(50, generator=torch.Generator().manual_seed(3), dtype=torch.float64, on_manifold=True)
    assert torch.equal(ym, y)
    assert dist.manifold.distance(m).max() < 1e-10 * (1 + m.norm(dim=-1).max())
    noise = x.double() - m
    # The sample std of N normal values has relative standard error 1/sqrt(2N): allow 5 of them.
    assert noise.std().item() == pytest.approx(dist.noise_std, rel=5 / math.sqrt(2 * noise.numel()))


def test_label_frequencies_follow_the_prior(dist):
    from scipy import stats

    _, y = dist.sample(20000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(y, minlength=dist.n_classes).numpy()
    expected = dist.log_prior.exp().numpy() * len(y)
    # Deterministic seed: a correct sampler fails this with probability 1e-4.
    assert stats.chisquare(counts, expected).pvalue > 1e-4


@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 30.0))
def test_posterior_grads_sum_to_zero_under_posterior(seed, scale):
    # sum_c p(c|x) grad log p(c|x) = grad sum_c p(c|x) = 0, at any point.
    for name in ("gsd", "vmf_S2_R10"):
        d = _CACHE.setdefault(name, FACTORIES[name]())
        gen = torch.Generator().manual_seed(seed)
        x = scale * torch.randn(8, d.ambient_dim, generator=gen, dtype=torch.float64)
        weighted = (d.log_posterior(x).exp().unsqueeze(-1) * d.posterior_grads(x)).sum(-2)
        assert (weighted.norm(dim=-1) <= _tolerance(d, x)[:, 0]).all()


_CACHE = {}


@pytest.mark.parametrize("bad, match", [
    (lambda d: torch.zeros(3, d.ambient_dim + 1), "last dim"),
    (lambda d: torch.full((2, d.ambient_dim), float("nan")), "NaN"),
    (lambda d: torch.zeros(2, d.ambient_dim, dtype=torch.long), "floating-point"),
])
def test_bad_points(dist, bad, match):
    with pytest.raises(ValueError, match=match):
        dist.log_posterior(bad(dist))


def test_bad_labels_and_sample_args(dist):
    x = torch.zeros(2, dist.ambient_dim)
    with pytest.raises(ValueError, match="labels"):
        dist.posterior_grad(x, torch.tensor([0, dist.n_classes]))
    with pytest.raises(ValueError, match="integer"):
        dist.posterior_grad(x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="broadcast"):
        dist.posterior_grad(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="n must be"):
        dist.sample(0)
    with pytest.raises(ValueError, match="dtype"):
        dist.sample(3, dtype=torch.int64)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_cuda_matches_cpu(name, cuda_device):
    d = FACTORIES[name]()
    x, y = _points(d)
    for method in ("log_posterior", "score"):
        cpu = getattr(d, method)(x)
        gpu = getattr(d, method)(x.to(cuda_device)).cpu()
        assert torch.allclose(gpu, cpu, rtol=1e-10, atol=1e-10)
    xs, ys = d.sample(10, generator=torch.Generator(device=cuda_device).manual_seed(0), device=cuda_device)
    assert xs.device.type == "cuda" and ys.device.type == "cuda"
