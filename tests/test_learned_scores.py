"""Score interface: exact smoothed scores against dense Gaussian mixtures, Tweedie, the learned denoiser."""

import math

import pytest
import torch

from manifold_lab.data import GaussianSignalDistractor, MaskedImageSignalDistractor, exact_denoiser, smoothed_score
from manifold_lab.learned import ExactScore, LearnedScore, ScoreModel, fit_denoiser
from manifold_lab.training import CheckpointError


def dense_mixture_score(dist, x, sigma):
    """grad log sum_c pi_c N(x; b + S m_c, S tau_s^2 S^T + D tau_d^2 D^T + (sigma_n^2 + sigma^2) I), by autograd."""
    s, dd, b = dist.signal_basis, dist.distractor_basis, dist.offset
    d = dist.ambient_dim
    cov = (dist.signal_std ** 2 * s @ s.T + dist.distractor_std ** 2 * dd @ dd.T
           + (dist.noise_std ** 2 + sigma ** 2) * torch.eye(d, dtype=torch.float64))
    comps = [torch.distributions.MultivariateNormal(b + s @ m, covariance_matrix=cov) for m in dist.class_means]
    x = x.clone().requires_grad_(True)
    logp = torch.logsumexp(torch.stack([c.log_prob(x) for c in comps], -1) + dist.log_prior, -1)
    return torch.autograd.grad(logp.sum(), x)[0]


@pytest.mark.parametrize("sigma", [0.0, 0.05, 0.7, 3.0])
def test_smoothed_score_is_the_dense_mixture_score(sigma):
    dist = GaussianSignalDistractor(2, 2, 7, n_classes=3, noise_std=0.3, seed=1)
    x = torch.randn(6, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(smoothed_score(dist, x, sigma), dense_mixture_score(dist, x, sigma))


def test_per_point_sigma_and_tweedie():
    dist = GaussianSignalDistractor(2, 1, 5, noise_std=0.2, seed=3)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sig = torch.tensor([0.1, 0.5, 0.1, 2.0])
    out = smoothed_score(dist, x, sig)
    for i in range(4):
        torch.testing.assert_close(out[i], dense_mixture_score(dist, x[i:i + 1], float(sig[i]))[0])
    torch.testing.assert_close(exact_denoiser(dist, x, sig), x + sig.double()[:, None] ** 2 * out)


def test_exact_score_model_on_images():
    dist = MaskedImageSignalDistractor((1, 8, 8), signal_dim=2, distractor_dim=2, noise_std=0.1)
    exact = ExactScore(dist)
    assert isinstance(exact, ScoreModel) and exact.image_shape == (1, 8, 8)
    x, _ = dist.sample(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    images = dist.to_images(x)
    s = exact.score(images, 0.3)
    assert s.shape == (3, 64)
    torch.testing.assert_close(s, dense_mixture_score(dist, x, 0.3))
    torch.testing.assert_close(exact.denoise(images, 0.3).flatten(1), x + 0.09 * s)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        exact.score(images, 0.0)


def test_score_interface_is_tweedie_for_any_denoiser():
    class Shrink(ScoreModel):
        image_shape = (1, 4, 4)

        def _denoise(self, images, sigma):
            return images / (1 + sigma[:, None, None, None] ** 2)  # exact for N(0, I)

    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(Shrink().score(x, 0.5), -x / 1.25)


@pytest.fixture(scope="module")
def learned():
    dist = MaskedImageSignalDistractor((1, 8, 8), signal_dim=2, distractor_dim=2, noise_std=0.1)
    x, _ = dist.sample(64, generator=torch.Generator().manual_seed(0))
    return fit_denoiser(dist.to_images(x), sigma_min=0.05, sigma_max=1.0, epochs=2, batch_size=32, width=4,
                        progress=False), x


def test_learned_score_is_tweedie_of_its_denoiser(learned):
    model, x = learned
    assert len(model.history) == 2 and math.isfinite(model.history[-1]["loss"])
    d = model.denoise(x[:4], 0.3)
    assert d.shape == (4, 64)
    torch.testing.assert_close(model.score(x[:4], 0.3), (d - x[:4]) / 0.09)
    sig = torch.tensor([0.1, 0.2, 0.4, 0.8])
    ds = model.denoise(x[:4], sig)
    for i in range(4):
        torch.testing.assert_close(ds[i:i + 1], model.denoise(x[i:i + 1], float(sig[i])))


def test_denoiser_preconditioning_is_edm(learned):
    model, x = learned
    net = model.model
    sigma, sd = 0.4, net.sigma_data
    images = x[:2].reshape(2, 1, 8, 8)
    var = sigma ** 2 + sd ** 2
    raw = net.network(images / math.sqrt(var), torch.full((2,), math.log(sigma) / 4))
    ref = sd ** 2 / var * images + sigma * sd / math.sqrt(var) * raw
    torch.testing.assert_close(model.denoise(images, sigma), ref)


def test_save_load_round_trip(tmp_path, learned):
    model, x = learned
    path = model.save(tmp_path / "den.pt")
    back = LearnedScore.load(path)
    assert (back.sigma_min, back.sigma_max) == (0.05, 1.0)
    torch.testing.assert_close(back.score(x[:3], 0.2), model.score(x[:3], 0.2), rtol=0, atol=0)
    from manifold_lab.learned import AutoencoderManifold

    with pytest.raises(CheckpointError, match="not an AutoencoderManifold"):
        AutoencoderManifold.load(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma_min": 0.0, "sigma_max": 1.0}, "sigma_min"),
    ({"sigma_min": 2.0, "sigma_max": 1.0}, "sigma_min must be <= sigma_max"),
    ({"sigma_min": 0.1, "sigma_max": float("inf")}, "sigma_max"),
])
def test_bad_sigma_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_denoiser(torch.rand(8, 1, 8, 8), epochs=1, progress=False, **kwargs)


def test_constant_images_are_refused():
    with pytest.raises(ValueError, match="zero variance"):
        fit_denoiser(torch.zeros(8, 1, 8, 8), sigma_min=0.1, sigma_max=1.0, epochs=1, progress=False)
