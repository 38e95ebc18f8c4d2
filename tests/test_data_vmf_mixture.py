"""The vMF sphere mixture: closed form against quadrature, sampling against the density."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special, stats

from manifold_lab.data import VonMisesFisherMixture
from manifold_lab.data._vmf import sample_vmf
from manifold_lab.data.normal_component import normal_fraction, predicted_normal_fraction
from manifold_lab.manifolds import Sphere


def _quadrature_class_density(dist, x, j):
    """``p(x | j)`` on a circle (k = 1) by adaptive quadrature of the defining integral.

    ``int_0^{2 pi} exp(kappa mu_j^T u(t)) / (2 pi I_0(kappa)) N(x; c + r F u(t), sigma^2 I) dt``.
    """
    c, f, r = dist.center.numpy(), dist.frame.numpy(), dist.radius
    mu, kappa, var = dist.mean_directions[j].numpy(), dist.concentration, dist.noise_std**2
    d = dist.ambient_dim

    def log_integrand(t):
        t = np.asarray(t, dtype=np.float64)
        u = np.stack([np.cos(t), np.sin(t)], axis=-1)
        m = c + r * u @ f.T
        return kappa * u @ mu - np.sum((x - m) ** 2, axis=-1) / (2 * var)

    # For small sigma or large kappa the integrand is a narrow peak (width ~ sigma / r
    # around x's angle, ~ 1 / sqrt(kappa) around mu_j's) whose height can underflow:
    # integrate one period around x's angle, relative to the log-integrand's maximum
    # (a fine grid, finer than either width, then refined), with the peaks as
    # breakpoints so the adaptive rule cannot step over them.
    y = f.T @ (x - c)
    t_x = math.atan2(y[1], y[0])
    grid = np.linspace(t_x - math.pi, t_x + math.pi, 40_001)
    i = int(np.argmax(log_integrand(grid)))
    step = grid[1] - grid[0]
    best = optimize.minimize_scalar(lambda t: -log_integrand(t), method="bounded",
                                    bounds=(grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]),
                                    options={"xatol": 1e-14})
    t_max = min(max(best.x, grid[0]), grid[-1]) if best.success else grid[i]
    shift = max(float(log_integrand(t_max)), float(log_integrand(grid[i])))
    t_mu = t_x + (math.atan2(mu[1], mu[0]) - t_x + math.pi) % (2 * math.pi) - math.pi
    points = sorted({t_x, t_mu, float(t_max), float(t_max - step), float(t_max + step)})
    points = [p for p in points if grid[0] < p < grid[-1]]
    val, _ = integrate.quad(lambda t: math.exp(float(log_integrand(t)) - shift), grid[0], grid[-1],
                            points=points, epsabs=0, epsrel=1e-13, limit=1000)
    log_i0 = math.log(special.ive(0, kappa)) + kappa
    return math.log(val) + shift - math.log(2 * math.pi) - log_i0 - 0.5 * d * math.log(2 * math.pi * var)


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), log_kappa=st.floats(-2, 3), log_sigma=st.floats(-2.5, 0),
       spread=st.floats(0, 3))
def test_closed_form_equals_quadrature_on_a_circle(seed, log_kappa, log_sigma, spread):
    sphere = Sphere(1, 3, radius=1.3, seed=seed)
    dist = VonMisesFisherMixture(sphere, 3, 10**log_kappa, 10**log_sigma, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x, _ = dist.sample(2, generator=gen, dtype=torch.float64)
    x = x + spread * dist.noise_std * torch.randn(2, 3, generator=gen, dtype=torch.float64)
    closed = dist.class_log_prob(x)
    for i in range(2):
        for j in range(3):
            ref = _quadrature_class_density(dist, x[i].numpy(), j)
            # quad's relative tolerance 1e-13 on the integral is an absolute 1e-13 on its log.
            assert closed[i, j].item() == pytest.approx(ref, abs=1e-11 * (1 + abs(ref)))


def test_closed_form_equals_quadrature_on_a_2_sphere():
    # k = 2: integrate over (polar, azimuth) with the surface element sin(theta).
    sphere = Sphere(2, 4, radius=0.8, seed=1)
    dist = VonMisesFisherMixture(sphere, 2, 3.0, 0.2, seed=0)
    x, _ = dist.sample(1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c, f, r, var = dist.center.numpy(), dist.frame.numpy(), dist.radius, dist.noise_std**2
    kappa = dist.concentration
    log_cp = math.log(4 * math.pi * math.sinh(kappa) / kappa)  # C_3(kappa) in closed form
    for i in range(1):
        xi = x[i].numpy()
        for j in range(2):
            mu = dist.mean_directions[j].numpy()
            shift = kappa + 0.0

            def integrand(phi, theta):
                u = np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)])
                m = c + r * f @ u
                return math.sin(theta) * math.exp(kappa * mu @ u - np.sum((xi - m) ** 2) / (2 * var) - shift)

            val, _ = integrate.dblquad(integrand, 0, math.pi, 0, 2 * math.pi, epsabs=0, epsrel=1e-10)
            ref = math.log(val) + shift - log_cp - 0.5 * 4 * math.log(2 * math.pi * var)
            # dblquad's relative tolerance 1e-10 on the integral is an absolute 1e-10 on its log.
            assert dist.class_log_prob(x)[i, j].item() == pytest.approx(ref, abs=1e-9)


def test_density_integrates_to_one_in_the_plane():
    # d = 2 (a circle in the plane): trapezoid rule on a grid 6 sigma past the circle.
    sphere = Sphere(1, 2, radius=1.0, seed=0)
    dist = VonMisesFisherMixture(sphere, 2, 2.0, 0.15, seed=0)
    half = 1.0 + 6 * 0.15 + dist.center.abs().max().item()
    g = torch.linspace(-half, half, 601, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx, yy], dim=-1)
    dens = dist.class_log_prob(pts).exp()  # [n, n, C]
    h = (g[1] - g[0]).item()
    mass = torch.trapezoid(torch.trapezoid(dens, dx=h, dim=0), dx=h, dim=0)
    # Smooth integrand with Gaussian tails: the trapezoid error is ~exp(-2 pi^2 sigma^2 / h^2),
    # negligible at h ~ 0.007; what is left is the mass beyond 6 sigma (< 1e-8).
    assert torch.allclose(mass, torch.ones(2, dtype=torch.float64), atol=1e-8)


def test_sampling_matches_density_on_a_grid():
    # Chi-square of 2-D bin counts against bin masses of the closed-form density.
    sphere = Sphere(1, 2, radius=1.0, seed=3)
    dist = VonMisesFisherMixture(sphere, 3, 3.0, 0.2, seed=1)
    n = 100_000
    x, _ = dist.sample(n, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    w = x - dist.center
    edges = torch.linspace(-1.6, 1.6, 17, dtype=torch.float64)
    counts = torch.histogramdd(w, bins=[edges, edges]).hist.flatten()
    # Bin masses by a 12 x 12 Gauss-Legendre rule per bin (error << 1e-9 per bin).
    nodes, weights = np.polynomial.legendre.leggauss(12)
    nodes, weights = torch.tensor(nodes), torch.tensor(weights)
    lo, hi = edges[:-1], edges[1:]
    pts1 = (lo[:, None] + hi[:, None]) / 2 + (hi - lo)[:, None] / 2 * nodes  # [16, 12]
    wts1 = (hi - lo)[:, None] / 2 * weights
    px = pts1[:, None, :, None].expand(16, 16, 12, 12)
    py = pts1[None, :, None, :].expand(16, 16, 12, 12)
    pts = torch.stack([px, py], dim=-1) + dist.center
    dens = dist.log_prob(pts).exp()
    mass = (dens * wts1[:, None, :, None] * wts1[None, :, None, :]).sum((-1, -2)).flatten()
    inside = mass.sum().item()
    assert 0.999 < inside <= 1.0 + 1e-9
    keep = mass * n > 20  # chi-square needs expected counts >~ 5
    expected = mass[keep] * n
    observed = counts[keep]
    chi2 = ((observed - expected) ** 2 / expected).sum().item()
    dof = int(keep.sum()) - 1
    # Deterministic seed: a correct sampler fails with probability 1e-4.
    assert stats.chi2.sf(chi2, dof) > 1e-4


@pytest.mark.parametrize("p, kappa", [(2, 0.3), (3, 5.0), (5, 50.0), (11, 1.0), (4, 2000.0)])
def test_vmf_sampler_matches_the_exact_projection_law(p, kappa):
    # W = mu^T u has density prop. to exp(kappa t) (1 - t^2)^((p-3)/2) on [-1, 1].
    gen = torch.Generator().manual_seed(p)
    mu = torch.randn(p, generator=gen, dtype=torch.float64)
    mu = mu / mu.norm()
    u = sample_vmf(mu.expand(20000, p), kappa, gen)
    assert torch.allclose(u.norm(dim=-1), torch.ones(20000, dtype=torch.float64), atol=1e-14)
    # In the angle theta = arccos(W) the density is prop. to exp(kappa cos theta) sin^(p-2) theta,
    # bounded on [0, pi] for every p >= 2 (W's own density is singular at +-1 when p = 2).
    theta = torch.arccos((u @ mu).clamp(-1, 1)).numpy()

    hi = min(math.pi, math.acos(max(-1.0, 1 - 40 / kappa)))  # beyond: < e^-40 of the peak
    grid = np.linspace(0, hi, 200_001)
    dens = np.exp(kappa * (np.cos(grid) - 1)) * np.sin(grid) ** (p - 2)
    # Cumulative trapezoid on 2e5 cells: error ~h^2 |f''| / 12 ~ 1e-9, far below KS resolution.
    cum = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
    cum /= cum[-1]

    def cdf(t):
        return np.interp(t, grid, cum)

    # A correct sampler fails with probability 1e-4 (deterministic seed).
    assert stats.kstest(theta, cdf).pvalue > 1e-4
    # The orthogonal part is uniform: its direction has zero mean.
    perp = u - (u @ mu)[:, None] * mu
    if kappa < 100:
        dirs = perp / perp.norm(dim=-1, keepdim=True)
        assert dirs.mean(0).norm().item() < 5 * math.sqrt(1 / 20000)


def test_mean_directions():
    # C <= k + 2: a regular simplex on the sphere.
    d = VonMisesFisherMixture(Sphere(2, 5, seed=0), 4, 1.0, 0.1, seed=3)
    gram = d.mean_directions @ d.mean_directions.T
    off = gram[~torch.eye(4, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -1 / 3), atol=1e-12)
    assert torch.allclose(gram.diagonal(), torch.ones(4, dtype=torch.float64), atol=1e-14)
    # Circle: equally spaced.
    d = VonMisesFisherMixture(Sphere(1, 3, seed=0), 6, 1.0, 0.1, seed=3)
    ang = torch.atan2(d.mean_directions[:, 1], d.mean_directions[:, 0]).sort().values
    assert torch.allclose(ang.diff(), torch.full((5,), math.pi / 3, dtype=torch.float64), atol=1e-12)
    # Many classes on S^2: repulsion spreads them (12 points reach the icosahedron's 1.0515).
    d = VonMisesFisherMixture(Sphere(2, 4, seed=0), 12, 1.0, 0.1, seed=0)
    assert torch.pdist(d.mean_directions).min().item() > 1.0
    assert torch.allclose(d.class_mean_points, d.center + d.radius * d.mean_directions @ d.frame.T)


@pytest.mark.parametrize("noise_std", [1e-2, 1e-4, 1e-6])
def test_small_noise_stays_finite_and_tangent(noise_std):
    sphere = Sphere(3, 30, radius=2.0, seed=0)
    dist = VonMisesFisherMixture(sphere, 4, 8.0, noise_std, seed=0)
    x, y = dist.sample(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for out in (dist.class_log_prob(x), dist.score(x), dist.posterior_grad(x, y)):
        assert torch.isfinite(out).all()
    m, y = dist.sample(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64, on_manifold=True)
    g = dist.posterior_grad(m, y)
    frac = normal_fraction(sphere, m, g)
    # Leading order ~2 sigma^2 / r^2 times an O(1) factor (see normal_component); 1e-6 at most here.
    assert frac.median().item() < 10 * noise_std**2 + 1e-12


def test_normal_fraction_matches_its_leading_order_prediction():
    # |P_N g| / |g| = sigma^2 c(x, y) + O(sigma^4): at sigma = 1e-3 the relative
    # gap to the leading-order formula must be ~1e-6; median and 95th percentile
    # are checked (a few points where the leading term nearly vanishes are worse).
    sphere = Sphere(2, 16, radius=1.5, seed=2)
    dist = VonMisesFisherMixture(sphere, 4, 3.0, 1e-3, seed=1)
    x, y = dist.sample(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64, on_manifold=True)
    measured = normal_fraction(sphere, x, dist.posterior_grad(x, y))
    rel = ((measured - predicted_normal_fraction(dist, x, y)) / measured).abs()
    assert rel.median().item() < 1e-5
    assert rel.quantile(0.95).item() < 1e-3


def test_far_from_and_at_the_centre():
    sphere = Sphere(2, 6, seed=0)
    dist = VonMisesFisherMixture(sphere, 3, 2.0, 0.3, seed=0)
    x = torch.stack([dist.center, dist.center + 0.01 * dist.frame[:, 0], dist.center + 50 * dist.frame[:, 1]])
    x.requires_grad_(True)
    lp = dist.log_prob(x)
    (auto,) = torch.autograd.grad(lp.sum(), x)
    assert torch.isfinite(lp).all()
    assert torch.allclose(dist.score(x.detach()), auto, rtol=1e-10, atol=1e-10)
    # At the centre every direction of the sphere is equally near: the score is
    # -(x - c)/sigma^2 + r/sigma^2 A(kappa) F sum_c p(c) mu_c.
    post = dist.log_posterior(x.detach()[:1]).exp()
    a = dist._bessel.ratio(torch.tensor([dist.concentration], dtype=torch.float64))
    expected = dist.radius / dist.noise_std**2 * a * (post @ dist.mean_directions) @ dist.frame.T
    assert torch.allclose(dist.score(x.detach()[:1]), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("args, match", [
    (dict(n_classes=1, concentration=1.0, noise_std=0.1), "n_classes"),
    (dict(n_classes=2, concentration=0.0, noise_std=0.1), "concentration"),
    (dict(n_classes=2, concentration=1.0, noise_std=-0.1), "noise_std"),
    (dict(n_classes=2, concentration=float("inf"), noise_std=0.1), "concentration"),
])
def test_bad_parameters(args, match):
    with pytest.raises(ValueError, match=match):
        VonMisesFisherMixture(Sphere(2, 5), **args)


def test_rejects_a_non_sphere():
    with pytest.raises(ValueError, match="Sphere"):
        VonMisesFisherMixture(object(), 2, 1.0, 0.1)
