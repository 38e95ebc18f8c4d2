"""SmoothedClassifier: certified radius sigma * Phi^-1(p_lower) with the exact Clopper-Pearson bound."""

from statistics import NormalDist

import pytest
import torch
from scipy import optimize, stats
from torch import nn

from manifold_lab.training import ABSTAIN, SmoothedClassifier

PHI_INV = NormalDist().inv_cdf  # independent of scipy's norm.ppf used by the library


class Constant(nn.Module):
    """Always votes for class 2 of 4."""

    def forward(self, x):
        out = torch.zeros(x.shape[0], 4, dtype=x.dtype)
        out[:, 2] = 1.0
        return out


class HalfSpace(nn.Module):
    """Binary base classifier: class 1 iff the first coordinate is > 0 (boundary x_0 = 0)."""

    def forward(self, x):
        s = x.flatten(1)[:, :1]
        return torch.cat([-s, s], dim=1)


def _cp_lower_by_root(k, n, alpha):
    """The p with P(Bin(n, p) >= k) = alpha, by root finding (not the beta quantile)."""
    return optimize.brentq(lambda p: stats.binom.sf(k - 1, n, p) - alpha, 1e-15, 1 - 1e-15, xtol=1e-15)


def test_unanimous_votes_closed_form_radius():
    # n unanimous votes: P(Bin(n, p) >= n) = p^n = alpha, so p_lower = alpha^(1/n) exactly.
    sigma, n, alpha = 0.25, 500, 0.001
    smoothed = SmoothedClassifier(Constant(), sigma, n)
    cert = smoothed.certify(torch.randn(3, 6), n0=10, alpha=alpha, generator=torch.Generator().manual_seed(0))
    p_lower = alpha ** (1 / n)
    assert cert.prediction.tolist() == [2, 2, 2]
    assert torch.allclose(cert.p_lower, torch.full((3,), p_lower, dtype=torch.float64), rtol=1e-12)
    assert torch.allclose(cert.radius, torch.full((3,), sigma * PHI_INV(p_lower), dtype=torch.float64),
                          rtol=1e-9)


def test_radius_matches_formula_and_true_distance_on_half_space():
    # For a half-space base classifier, p_A = Phi(a / sigma) at distance a from the
    # boundary, so the exact smoothed radius sigma * Phi^-1(p_A) is a itself.
    sigma, n, n0, alpha = 0.5, 20000, 50, 0.001
    a = torch.tensor([0.2, 0.6, 1.0], dtype=torch.float64)
    x = torch.zeros(3, 1, 2, 2, dtype=torch.float64)  # image-shaped inputs
    x[:, 0, 0, 0] = a
    smoothed = SmoothedClassifier(HalfSpace(), sigma, n, batch_size=4096)
    cert = smoothed.certify(x, n0=n0, alpha=alpha, generator=torch.Generator().manual_seed(1))
    # Same generator seed, same draw order as certify: selection counts, then estimation counts.
    g = torch.Generator().manual_seed(1)
    smoothed.class_counts(x, n0, generator=g)
    counts = smoothed.class_counts(x, n, generator=g)
    assert cert.prediction.tolist() == [1, 1, 1]
    for i in range(3):
        p_lower = _cp_lower_by_root(int(counts[i, 1]), n, alpha)
        assert float(cert.p_lower[i]) == pytest.approx(p_lower, rel=1e-9)
        assert float(cert.radius[i]) == pytest.approx(sigma * PHI_INV(p_lower), rel=1e-7)
        # Sound (below the true radius a) and not loose: p_hat - p_lower is at most
        # ~ (z_{1-alpha} + 5) SE of a binomial proportion (5 SE of sampling error on top
        # of the bound's own width); the radius moves by sigma / phi(Phi^-1(p)) per unit p.
        p = float(NormalDist().cdf(float(a[i]) / sigma))
        se = (p * (1 - p) / n) ** 0.5
        slack = sigma * (PHI_INV(1 - alpha) + 5) * se / NormalDist().pdf(PHI_INV(p))
        assert float(a[i]) - slack < float(cert.radius[i]) < float(a[i])


def test_abstains_on_the_boundary():
    sigma, n = 0.5, 2000
    x = torch.zeros(2, 3)  # both points on the boundary: p_A = 1/2
    smoothed = SmoothedClassifier(HalfSpace(), sigma, n)
    cert = smoothed.certify(x, generator=torch.Generator().manual_seed(2))
    assert cert.prediction.tolist() == [ABSTAIN, ABSTAIN]
    assert cert.radius.tolist() == [0.0, 0.0]
    assert smoothed.predict(x, generator=torch.Generator().manual_seed(2)).tolist() == [ABSTAIN, ABSTAIN]


def test_predict_returns_the_clear_winner():
    x = torch.zeros(4, 3)
    x[:, 0] = torch.tensor([-2.0, -1.0, 1.0, 2.0])
    smoothed = SmoothedClassifier(HalfSpace(), 0.5, 500)
    assert smoothed.predict(x, generator=torch.Generator().manual_seed(3)).tolist() == [0, 0, 1, 1]


def test_class_counts_estimate_the_noise_probability():
    sigma, n = 1.0, 4000
    a = torch.tensor([[0.0, 5.0], [0.5, 0.0], [-1.0, 3.0]])
    counts = SmoothedClassifier(HalfSpace(), sigma, 1, batch_size=1000).class_counts(
        a, n, generator=torch.Generator().manual_seed(4))
    assert counts.sum(1).tolist() == [n] * 3
    for i in range(3):
        p = NormalDist().cdf(float(a[i, 0]) / sigma)
        assert float(counts[i, 1]) / n == pytest.approx(p, abs=5 * (p * (1 - p) / n) ** 0.5)


def test_restores_mode_and_needs_no_gradients():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    model.train()
    SmoothedClassifier(model, 0.1, 20).certify(torch.zeros(2, 3), n0=5,
                                              generator=torch.Generator().manual_seed(0))
    assert model.training and model[1].training
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("kwargs", [dict(noise_std=0.0), dict(noise_std=float("nan")), dict(n_samples=0)])
def test_bad_construction(kwargs):
    args = dict(model=Constant(), noise_std=0.1, n_samples=10) | kwargs
    with pytest.raises(ValueError):
        SmoothedClassifier(**args)


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        SmoothedClassifier(Constant(), 0.1, 10).certify(torch.zeros(1, 2), alpha=1.5)


@pytest.mark.gpu
def test_certify_on_cuda(cuda_device):
    x = torch.zeros(2, 3, device=cuda_device)
    x[:, 0] = torch.tensor([0.5, -0.5])
    cert = SmoothedClassifier(HalfSpace().to(cuda_device), 0.5, 2000).certify(
        x, generator=torch.Generator(device=cuda_device).manual_seed(0))
    assert cert.prediction.tolist() == [1, 0] and bool((cert.radius > 0).all())


def test_vectorised_binomial_test_equals_scipy_binomtest():
    from manifold_lab.training.smoothing import binomial_half_p_value

    pairs = [(0, 0), (1, 0), (5, 5), (7, 3), (3, 7), (60, 40), (520, 480), (1000, 0), (12, 11)]
    got = binomial_half_p_value([a for a, _ in pairs], [b for _, b in pairs])
    for (a, b), p in zip(pairs, got):
        expected = stats.binomtest(a, a + b, 0.5).pvalue if a + b > 0 else 1.0
        assert p == pytest.approx(expected, rel=1e-12, abs=1e-300)
