"""GaussianClassImages: closed forms against dense float64 Gaussians (autograd, finite differences).

The references build each class's covariance ``B diag(lam_c) B^T + (tau^2 + sigma^2) I`` as a
dense matrix and use ``torch.distributions.MultivariateNormal``; nothing here reuses
the module's coordinate formulas.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from manifold_lab.data import GaussianClassImages, smoothed_class_score, smoothed_posterior_grad, smoothed_score
from manifold_lab.data.smoothed import exact_denoiser, smoothed

SMALL = dict(image_shape=(1, 10, 10), n_classes=3, shared_dim=3, bump_dim=2, noise_std=0.1, seed=0)


@pytest.fixture(scope="module")
def dist():
    return GaussianClassImages(**SMALL)


def dense_class_log_prob(dist, x, sigma=0.0):
    """``log N(x; mu_c, B diag(lam_c) B^T + (tau^2 + sigma^2) I)`` per class: ``[n, C]``, float64."""
    b = dist.frame
    eye = torch.eye(dist.ambient_dim, dtype=torch.float64)
    out = []
    for mean, lam in zip(dist.class_means, dist.class_variances):
        cov = (b * lam) @ b.T + (dist.noise_std ** 2 + sigma ** 2) * eye
        out.append(torch.distributions.MultivariateNormal(dist.offset + b @ mean, covariance_matrix=cov).log_prob(x))
    return torch.stack(out, -1)


def dense_log_posterior(dist, x, sigma=0.0):
    return torch.log_softmax(dense_class_log_prob(dist, x, sigma) + dist.log_prior, -1)


def _points(dist, n=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x, y = dist.sample(n, generator=gen, dtype=torch.float64)
    far = x[:2] + 0.5 * torch.randn(2, dist.ambient_dim, generator=gen, dtype=torch.float64)
    return torch.cat([x, far]), torch.cat([y, y[:2]])


def test_frame_and_structure(dist):
    k = 3 + 3 * 2
    assert dist.frame.shape == (100, k) and dist.frame_dim == k
    torch.testing.assert_close(dist.frame.T @ dist.frame, torch.eye(k, dtype=torch.float64), rtol=0, atol=1e-12)
    # Classes share the mean image up to their own first bump.
    diffs = dist.class_means_ambient - dist.offset
    assert all(int((m != 0).sum()) == 1 for m in dist.class_means)
    torch.testing.assert_close(diffs.norm(dim=1), torch.full((3,), 0.2, dtype=torch.float64))


def test_class_log_prob_is_the_dense_gaussian(dist):
    x, _ = _points(dist)
    torch.testing.assert_close(dist.class_log_prob(x), dense_class_log_prob(dist, x))


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.25, 1.0])
def test_smoothed_class_scores_and_bayes_gradient_are_autograd_of_dense_densities(dist, sigma):
    x, y = _points(dist, seed=1)
    xr = x.clone().requires_grad_(True)
    logp = dense_class_log_prob(dist, xr, sigma)
    own = logp.gather(1, y[:, None])[:, 0]
    class_grad = torch.autograd.grad(own.sum(), xr, retain_graph=True)[0]
    marg = torch.logsumexp(logp + dist.log_prior, -1)
    marg_grad = torch.autograd.grad(marg.sum(), xr, retain_graph=True)[0]
    post_grad = torch.autograd.grad(dense_log_posterior(dist, xr, sigma).gather(1, y[:, None]).sum(), xr)[0]
    torch.testing.assert_close(smoothed_class_score(dist, x, sigma, y), class_grad)
    torch.testing.assert_close(smoothed_score(dist, x, sigma), marg_grad)
    torch.testing.assert_close(smoothed_posterior_grad(dist, x, sigma, y), post_grad)
    torch.testing.assert_close(post_grad, class_grad - marg_grad)


def test_bayes_gradient_matches_central_finite_differences(dist):
    """Directional derivatives of the dense log-posterior (float64, step 1e-5: error ~1e-10)."""
    x, y = _points(dist, n=4, seed=2)
    sigma, h = 0.2, 1e-5
    grad = smoothed_posterior_grad(dist, x, sigma, y)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        v = v / v.norm(dim=1, keepdim=True)
        up = dense_log_posterior(dist, x + h * v, sigma).gather(1, y[:, None])[:, 0]
        down = dense_log_posterior(dist, x - h * v, sigma).gather(1, y[:, None])[:, 0]
        torch.testing.assert_close((up - down) / (2 * h), (grad * v).sum(1), rtol=1e-6, atol=1e-7)


@settings(deadline=None, max_examples=10, derandomize=True)
@given(seed=st.integers(0, 50), sigma=st.floats(0.01, 2.0), n_classes=st.integers(2, 4))
def test_smoothing_is_adding_the_noise_variance(seed, sigma, n_classes):
    """smoothed(sigma) is the law with tau^2 + sigma^2 (checked on the dense densities and Tweedie)."""
    d = GaussianClassImages((1, 12, 12), n_classes=n_classes, shared_dim=2, bump_dim=1, noise_std=0.15, seed=seed)
    x, y = _points(d, n=4, seed=seed)
    torch.testing.assert_close(smoothed(d, sigma).class_log_prob(x), dense_class_log_prob(d, x, sigma))
    torch.testing.assert_close(exact_denoiser(d, x, sigma), x + sigma ** 2 * smoothed_score(d, x, sigma))


def test_sampling_moments_follow_the_closed_form(dist):
    """Per-class sample mean and variance along the frame and the noise, within 5 standard errors."""
    n = 6000
    x, y = dist.sample(n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    a = (x - dist.offset) @ dist.frame
    for c in range(dist.n_classes):
        ac = a[y == c]
        var = dist.class_variances[c] + dist.noise_std ** 2
        se = (var / ac.shape[0]).sqrt()
        assert bool(((ac.mean(0) - dist.class_means[c]).abs() < 5 * se).all())
        assert bool(((ac.var(0) / var - 1).abs() < 5 * math.sqrt(2 / ac.shape[0])).all())
    perp = (x - dist.offset) - a @ dist.frame.T
    assert abs(float(perp.square().sum(1).mean()) / ((100 - 9) * dist.noise_std ** 2) - 1) < 0.01


def test_same_generator_same_samples_any_dtype(dist):
    a, ya = dist.sample(5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    b, yb = dist.sample(5, generator=torch.Generator().manual_seed(7), dtype=torch.float32)
    assert torch.equal(ya, yb)
    torch.testing.assert_close(a.float(), b)


def test_default_posterior_is_not_saturated():
    """The default 28x28 law: mean max-posterior at noisy points well inside (1/C, 1) (measured 0.66 at 0.1)."""
    d = GaussianClassImages()
    gen = torch.Generator().manual_seed(0)
    x, _ = d.sample(1000, generator=gen, dtype=torch.float64)
    for sigma, (lo, hi) in ((0.1, (0.5, 0.85)), (0.25, (0.35, 0.7))):
        noisy = x + sigma * torch.randn(x.shape, generator=gen, dtype=torch.float64)
        top = smoothed(d, sigma).log_posterior(noisy).exp().max(-1).values.mean()
        assert lo < float(top) < hi


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_shape=(1, 8, 8)), "too small for bumps"),
    (dict(image_shape=(1, 10, 10), shared_dim=90, bump_dim=5), "must be < 100 pixels"),
    (dict(noise_std=0.0), "noise_std"),
    (dict(bump_std_own=-1.0), "bump_std_own"),
    (dict(bump_amplitude=float("nan")), "bump_amplitude must be finite"),
    (dict(n_classes=1), "n_classes"),
    (dict(bump_dim=0), "bump_dim"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianClassImages(**kwargs)


def test_bad_labels_and_sigma(dist):
    x, _ = _points(dist, n=2)
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, 2\]"):
        smoothed_posterior_grad(dist, x, 0.1, torch.tensor([0, 0, 5, 0]))
    with pytest.raises(ValueError, match="y must be a label or have 4 entries"):
        smoothed_class_score(dist, x, 0.1, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
        dist.smoothed(-0.1)
