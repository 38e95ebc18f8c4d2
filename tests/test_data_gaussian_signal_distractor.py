"""Gaussian signal–distractor data: closed form, Theorem 3.2, sampling, validation."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from manifold_lab.data import GaussianSignalDistractor, LinearSignalDistractor
from manifold_lab.data._directions import random_orthonormal

EPS = torch.finfo(torch.float64).eps


def _covariance(dist):
    s, d = dist.signal_basis, dist.distractor_basis
    sig2 = dist.noise_std**2
    return (dist.signal_std**2 * s @ s.T + dist.distractor_std**2 * d @ d.T
            + sig2 * torch.eye(dist.ambient_dim, dtype=torch.float64))


@pytest.mark.parametrize("n_classes", [2, 5])
def test_class_log_prob_is_the_gaussian_density(n_classes):
    # Independent reference: torch's MultivariateNormal with the full covariance.
    gen = torch.Generator().manual_seed(0)
    frame = random_orthonormal(9, 5, gen)
    means = torch.randn(n_classes, 3, generator=gen, dtype=torch.float64)
    probs = torch.rand(n_classes, generator=gen, dtype=torch.float64) + 0.1
    dist = LinearSignalDistractor(frame[:, :3], frame[:, 3:], means, offset=torch.randn(9, generator=gen,
                                  dtype=torch.float64), signal_std=1.3, distractor_std=0.4, noise_std=0.25,
                                  class_probs=(probs / probs.sum()).tolist())
    x = torch.randn(20, 9, generator=gen, dtype=torch.float64) * 2
    cov = _covariance(dist)
    ref = torch.stack([torch.distributions.MultivariateNormal(m, cov).log_prob(x)
                       for m in dist.class_means_ambient], dim=-1)
    assert torch.allclose(dist.class_log_prob(x), ref, rtol=1e-12, atol=1e-10)


def test_geometry_from_seed():
    dist = GaussianSignalDistractor(3, 5, 20, n_classes=4, seed=7, class_separation=2.5)
    frame = torch.cat([dist.signal_basis, dist.distractor_basis], dim=1)
    assert torch.allclose(frame.T @ frame, torch.eye(8, dtype=torch.float64), atol=1e-14)
    # C = ks + 1: a regular simplex, every pair exactly class_separation apart.
    dists = torch.pdist(dist.class_means)
    assert torch.allclose(dists, torch.full_like(dists, 2.5), rtol=1e-12)
    again = GaussianSignalDistractor(3, 5, 20, n_classes=4, seed=7, class_separation=2.5)
    assert torch.equal(again.signal_basis, dist.signal_basis) and torch.equal(again.class_means, dist.class_means)
    other = GaussianSignalDistractor(3, 5, 20, n_classes=4, seed=8, class_separation=2.5)
    assert not torch.allclose(other.signal_basis, dist.signal_basis)


@pytest.mark.parametrize("ks, c", [(1, 4), (2, 6)])
def test_class_separation_is_the_closest_pair(ks, c):
    dist = GaussianSignalDistractor(ks, 2, 10, n_classes=c, seed=0, class_separation=1.5)
    assert torch.pdist(dist.class_means).min().item() == pytest.approx(1.5, rel=1e-12)


def test_manifold_is_the_signal_plus_distractor_span():
    dist = GaussianSignalDistractor(2, 3, 12, seed=0)
    x, _ = dist.sample(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64, on_manifold=True)
    basis = dist.manifold.tangent_basis(x)  # [n, d, 5]
    frame = torch.cat([dist.signal_basis, dist.distractor_basis], dim=1)
    # Same subspace: projecting the frame onto the tangent basis keeps it whole.
    proj = basis @ (basis.transpose(-1, -2) @ frame)
    assert torch.allclose(proj, frame.expand_as(proj), atol=1e-12)


# ---- Theorem 3.2 ------------------------------------------------------------------

@given(seed=st.integers(0, 1000), scale=st.floats(0.1, 1e3))
def test_theorem_3_2_gradient_has_no_distractor_or_normal_component(seed, scale):
    # Differentiate the full log-posterior by autograd (not the closed-form gradient,
    # which is in the signal span by construction).
    dist = GaussianSignalDistractor(3, 4, 24, n_classes=3, noise_std=0.1, seed=seed % 5)
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(16, 24, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=gen)
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(dist.log_posterior(x).gather(1, y[:, None]).sum(), x)
    s, d = dist.signal_basis, dist.distractor_basis
    distractor = (g @ d).norm(dim=-1)
    normal = (g - (g @ s) @ s.T - (g @ d) @ d.T).norm(dim=-1)
    keep = g.norm(dim=-1) > 1e-200  # points where the posterior has saturated have g == 0
    assert (distractor[keep] <= 1e-10 * g.norm(dim=-1)[keep]).all()
    assert (normal[keep] <= 1e-10 * g.norm(dim=-1)[keep]).all()
    # The closed form, too.
    g2 = dist.posterior_grad(x.detach(), y)
    assert ((g2 @ d).norm(dim=-1) <= 1e-10 * g2.norm(dim=-1) + 1e-300).all()


@pytest.mark.parametrize("magnitude", [1.0, 1e4, 1e8, 1e12])
def test_posterior_unchanged_by_huge_distractor_and_normal_moves(magnitude):
    dist = GaussianSignalDistractor(2, 6, 30, n_classes=3, noise_std=0.2, seed=1)
    gen = torch.Generator().manual_seed(0)
    x, _ = dist.sample(64, generator=gen, dtype=torch.float64)
    t = torch.randn(64, 6, generator=gen, dtype=torch.float64)
    t = magnitude * t / t.norm(dim=-1, keepdim=True)
    moved = x + t @ dist.distractor_basis.T
    v = torch.randn(64, 30, generator=gen, dtype=torch.float64)
    v = v - (v @ dist.signal_basis) @ dist.signal_basis.T - (v @ dist.distractor_basis) @ dist.distractor_basis.T
    moved_n = x + magnitude * v / v.norm(dim=-1, keepdim=True)
    # The logits see x only through S^T x: a move of size M along directions
    # orthogonal to S (in exact arithmetic) changes S^T x by the rounding of
    # x + move, <= eps M per coordinate, times |S^T D| ~ eps from the basis; the
    # logits multiply it by |m_c| / v_s.
    lever = dist.class_means.norm(dim=-1).max().item() / (dist.signal_std**2 + dist.noise_std**2)
    tol = 4 * lever * EPS * (magnitude + x.norm(dim=-1, keepdim=True)) * math.sqrt(dist.ambient_dim) + 1e-14
    for y in (moved, moved_n):
        assert ((dist.log_posterior(y) - dist.log_posterior(x)).abs() <= tol).all()


def test_log_prob_does_change_with_distractor():
    # Control: the marginal density is not invariant, only the posterior is.
    dist = GaussianSignalDistractor(2, 2, 8, seed=0)
    x = torch.zeros(1, 8, dtype=torch.float64)
    moved = x + 3 * dist.distractor_basis[:, 0]
    assert (dist.log_prob(moved) - dist.log_prob(x)).abs().item() > 1.0


# ---- sampling matches the density ----------------------------------------------------

def test_sampling_matches_exact_one_dimensional_marginals():
    dist = GaussianSignalDistractor(2, 3, 10, n_classes=3, noise_std=0.3, seed=2, signal_std=0.8,
                                    distractor_std=1.7)
    x, y = dist.sample(20000, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    v_s = dist.signal_std**2 + dist.noise_std**2
    v_d = dist.distractor_std**2 + dist.noise_std**2
    s0 = x @ dist.signal_basis[:, 0]
    # Mixture marginal along a signal direction: sum_c pi_c N(m_c0, v_s).
    means = dist.class_means[:, 0].numpy()

    def mixture_cdf(t):
        return sum(stats.norm.cdf(t, loc=m, scale=math.sqrt(v_s)) for m in means) / len(means)

    # Deterministic seed: a correct sampler fails each check with probability 1e-4.
    assert stats.kstest(s0.numpy(), mixture_cdf).pvalue > 1e-4
    assert stats.kstest((x @ dist.distractor_basis[:, 1]).numpy(), "norm", args=(0, math.sqrt(v_d))).pvalue > 1e-4
    n = torch.randn(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    frame = torch.cat([dist.signal_basis, dist.distractor_basis], dim=1)
    n = n - frame @ (frame.T @ n)
    n = n / n.norm()
    assert stats.kstest((x @ n).numpy(), "norm", args=(0, dist.noise_std)).pvalue > 1e-4
    # Class-conditional: along the signal direction, class 1 is N(m_10, v_s).
    assert stats.kstest(s0[y == 1].numpy(), "norm", args=(means[1], math.sqrt(v_s))).pvalue > 1e-4


def test_sampling_control_fails_with_wrong_variance():
    # The KS check above can fail: a 10% wrong noise level is detected.
    dist = GaussianSignalDistractor(2, 3, 10, noise_std=0.3, seed=2)
    x, _ = dist.sample(20000, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    frame = torch.cat([dist.signal_basis, dist.distractor_basis], dim=1)
    n = torch.randn(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    n = n - frame @ (frame.T @ n)
    n = n / n.norm()
    assert stats.kstest((x @ n).numpy(), "norm", args=(0, 0.33)).pvalue < 1e-4


# ---- validation ---------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(signal_dim=3, distractor_dim=5, ambient_dim=8), "< ambient_dim"),
    (dict(signal_dim=0, distractor_dim=1, ambient_dim=8), "signal_dim"),
    (dict(signal_dim=1, distractor_dim=-1, ambient_dim=8), "distractor_dim"),
    (dict(signal_dim=2, distractor_dim=1, ambient_dim=8, n_classes=1), "n_classes"),
    (dict(signal_dim=2, distractor_dim=1, ambient_dim=8, noise_std=0.0), "noise_std"),
    (dict(signal_dim=2, distractor_dim=1, ambient_dim=8, signal_std=-1.0), "signal_std"),
    (dict(signal_dim=2, distractor_dim=1, ambient_dim=8, class_separation=float("nan")), "class_separation"),
    (dict(signal_dim=2, distractor_dim=1, ambient_dim=8, class_probs=[0.5, 0.6]), "sum to 1"),
    (dict(signal_dim=2, distractor_dim=1, ambient_dim=8, class_probs=[1.0]), "entries"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianSignalDistractor(**kwargs)


def test_bad_bases():
    gen = torch.Generator().manual_seed(0)
    frame = random_orthonormal(6, 3, gen)
    with pytest.raises(ValueError, match="orthonormal"):
        LinearSignalDistractor(frame[:, :1], frame[:, :2], torch.zeros(2, 1))  # overlapping
    with pytest.raises(ValueError, match="class_means"):
        LinearSignalDistractor(frame[:, :1], frame[:, 1:], torch.zeros(2, 2))
    with pytest.raises(ValueError, match="offset"):
        LinearSignalDistractor(frame[:, :1], frame[:, 1:], torch.zeros(2, 1), offset=torch.zeros(5))


def test_distractor_dim_zero_is_allowed():
    dist = GaussianSignalDistractor(2, 0, 5, seed=0)
    x, y = dist.sample(4, generator=torch.Generator().manual_seed(0))
    assert dist.log_posterior(x).shape == (4, 2)
