"""The class-conditional denoiser: scores by class, the Bayes gradient, checkpoints, errors.

Exact references: ``ExactScore`` on ``GaussianClassImages`` / ``MaskedImageSignalDistractor``
(closed forms checked against dense Gaussians in ``test_data_gaussian_class_images.py``);
the learned model's identities are checked against its raw network.
"""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from manifold_lab.data import GaussianClassImages, MaskedImageSignalDistractor
from manifold_lab.learned import ExactScore, LearnedScore, fit_denoiser
from manifold_lab.metrics import score_cosine
from manifold_lab.models import NoiseConditionalDenoiser
from manifold_lab.models.denoiser import edm_coefficients
from manifold_lab.training import load_checkpoint

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SMALL = dict(image_shape=(1, 12, 12), n_classes=3, shared_dim=3, bump_dim=2, noise_std=0.1, seed=0)


@pytest.fixture(scope="module")
def data():
    dist = GaussianClassImages(**SMALL)
    x, y = dist.sample(96, generator=torch.Generator().manual_seed(0))
    return dist, dist.to_images(x), y


@pytest.fixture(scope="module")
def cond(data):
    _, images, y = data
    return fit_denoiser(images, labels=y, n_classes=3, sigma_min=0.05, sigma_max=1.0, epochs=2, batch_size=32,
                        width=4, progress=False)


def test_conditional_model_shares_the_unconditional_init():
    """Same seed: every weight of the denoiser equals the unconditional model's; the classifier is extra."""
    plain = NoiseConditionalDenoiser((1, 12, 12), width=4, seed=3)
    model = NoiseConditionalDenoiser((1, 12, 12), width=4, seed=3, n_classes=5)
    own = dict(model.named_parameters())
    for name, p in plain.named_parameters():
        assert torch.equal(own.pop(name), p), name
    assert own and all(name.startswith("classifier.") for name in own)
    assert own["classifier.out.weight"].shape == (5, 128)
    assert "n_classes" not in plain.config() and model.config()["n_classes"] == 5


def test_class_output_is_the_classifier_gradient_by_finite_differences():
    """D(x, sigma, y) - D(x, sigma) = sigma^2 grad log p(y | x, sigma); the gradient against float64
    central differences of the model's own log-posterior (step 1e-6: error ~1e-12)."""
    model = NoiseConditionalDenoiser((1, 12, 12), width=4, seed=0, n_classes=3).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 12, 12, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 2, 1])
    sigma = torch.tensor([0.1, 0.3, 0.7], dtype=torch.float64)
    grad = model.posterior_grad(x, sigma, y)
    with torch.no_grad():
        torch.testing.assert_close(model(x, sigma, y) - model(x, sigma), sigma[:, None, None, None] ** 2 * grad)
        h = 1e-6
        for _ in range(3):
            v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
            up = model.log_posterior(x + h * v, sigma).gather(1, y[:, None])[:, 0]
            down = model.log_posterior(x - h * v, sigma).gather(1, y[:, None])[:, 0]
            torch.testing.assert_close((up - down) / (2 * h), (grad * v).flatten(1).sum(1), rtol=1e-6, atol=1e-8)
    # The log-posterior is normalised: sum_c p(c | x) = 1, so sum_c p(c | x) grad log p(c | x) = 0.
    post = model.log_posterior(x, sigma).exp().detach()
    total = sum(post[:, c, None, None, None] * model.posterior_grad(x, sigma, c) for c in range(3))
    torch.testing.assert_close(total, torch.zeros_like(total), rtol=0, atol=1e-12)


def test_conditional_preconditioning_is_centred_edm(cond, data):
    """D(x, sigma) = m + c_skip (x - m) + c_out F(c_in (x - m), c_noise), from the raw network."""
    _, images, y = data
    net = cond.model
    torch.testing.assert_close(net.data_mean, images.mean(0))
    sigma = torch.full((3,), 0.4)
    c_skip, c_out, c_in, c_noise = (t[:, None, None, None] if i < 3 else t
                                    for i, t in enumerate(edm_coefficients(sigma, net.sigma_data)))
    x, m = images[:3], net.data_mean
    with torch.no_grad():
        ref = m + c_skip * (x - m) + c_out * net.network(c_in * (x - m), c_noise)
        torch.testing.assert_close(cond.denoise(x, 0.4), ref)
        torch.testing.assert_close(cond.denoise(x, 0.4, y[:3]), ref + 0.16 * net.posterior_grad(x, sigma, y[:3]))


def test_scores_and_bayes_gradient_are_tweedie(cond, data):
    _, images, y = data
    x = images[:5]
    flat = x.flatten(1)
    with torch.no_grad():
        s_y = cond.score(x, 0.3, y[:5])
        s = cond.score(x, 0.3)
        bg = cond.bayes_gradient(x, y[:5], 0.3)
        torch.testing.assert_close(s_y, (cond.denoise(x, 0.3, y[:5]).flatten(1) - flat) / 0.09)
        torch.testing.assert_close(s, (cond.denoise(x, 0.3).flatten(1) - flat) / 0.09)
        torch.testing.assert_close(bg, s_y - s, rtol=1e-4, atol=1e-4 * float(s.abs().max()))
        assert bg.shape == (5, 144)
        # One label for all, per-image sigma.
        torch.testing.assert_close(cond.bayes_gradient(x, 1, torch.full((5,), 0.3)),
                                   cond.bayes_gradient(x, torch.ones(5, dtype=torch.int64), 0.3))


def test_checkpoint_round_trip_and_old_format(tmp_path, cond, data):
    _, images, y = data
    back = LearnedScore.load(cond.save(tmp_path / "cond.pt"))
    assert back.conditional and back.n_classes == 3
    with torch.no_grad():
        assert torch.equal(back.bayes_gradient(images[:3], y[:3], 0.2), cond.bayes_gradient(images[:3], y[:3], 0.2))
    plain = fit_denoiser(images, sigma_min=0.05, sigma_max=1.0, epochs=1, batch_size=32, width=4, progress=False)
    path = plain.save(tmp_path / "plain.pt")
    assert "n_classes" not in load_checkpoint(path).model_config   # the format unconditional checkpoints always had
    old = LearnedScore.load(path)
    assert not old.conditional and old.n_classes is None
    with pytest.raises(ValueError, match="bayes_gradient needs a class-conditional score model.*fit_denoiser"):
        old.bayes_gradient(images[:2], y[:2], 0.2)
    with pytest.raises(ValueError, match=r"score\(x, sigma, y\) needs a class-conditional"):
        old.score(images[:2], 0.2, y[:2])
    with pytest.raises(ValueError, match="built without classes"):
        old.model(images[:2], 0.2, y[:2])


def test_resumed_conditional_fit_equals_an_uninterrupted_one(tmp_path, data):
    _, images, y = data
    kw = dict(labels=y, sigma_min=0.05, sigma_max=1.0, batch_size=32, width=4, progress=False,
              checkpoint_path=tmp_path / "ck.pt")
    fit_denoiser(images, epochs=1, **kw)
    resumed = fit_denoiser(images, epochs=2, resume=True, **kw)
    straight = fit_denoiser(images, epochs=2, **{**kw, "checkpoint_path": None})
    for (name, a), b in zip(resumed.model.state_dict().items(), straight.model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels=torch.zeros(96)), "labels must be an integer tensor"),
    (dict(labels=torch.zeros(5, dtype=torch.int64)), r"labels must have shape \[96\]"),
    (dict(labels=torch.full((96,), 3), n_classes=3), r"labels must lie in \[0, 2\]"),
    (dict(labels=torch.zeros(96, dtype=torch.int64)), "n_classes >= 2"),
    (dict(labels=torch.arange(96) % 3, class_weight=0.0), "class_weight"),
    (dict(n_classes=3), "n_classes needs labels"),
])
def test_bad_conditional_fit_arguments(data, kwargs, match):
    _, images, _ = data
    with pytest.raises(ValueError, match=match):
        fit_denoiser(images, sigma_min=0.1, sigma_max=1.0, epochs=1, progress=False, **kwargs)


def test_bad_labels_at_use(cond, data):
    _, images, _ = data
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, 2\]"):
        cond.bayes_gradient(images[:2], torch.tensor([0, 3]), 0.2)
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        cond.score(images[:2], 0.2, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="y must be one label or have 2 entries"):
        cond.bayes_gradient(images[:2], torch.tensor([0, 1, 2]), 0.2)


@pytest.mark.parametrize("make", [lambda: GaussianClassImages(**SMALL),
                                  lambda: MaskedImageSignalDistractor((1, 8, 8), n_classes=3, signal_dim=2,
                                                                      distractor_dim=2, noise_std=0.1)])
def test_exact_score_is_class_conditional(make):
    dist = make()
    exact = ExactScore(dist)
    x, y = dist.sample(6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigma = torch.tensor([0.1, 0.1, 0.3, 0.3, 1.0, 2.0], dtype=torch.float64)
    bg = exact.bayes_gradient(x, y, sigma)
    torch.testing.assert_close(bg, exact.score(x, sigma, y) - exact.score(x, sigma))
    for i in range(6):   # per-point sigma = the smoothed law at that sigma
        law = dist.smoothed(float(sigma[i])) if hasattr(dist, "smoothed") else None
        if law is not None:
            torch.testing.assert_close(bg[i], law.posterior_grad(x[i], y[i]))
    torch.testing.assert_close(exact.denoise(x, sigma, y), x + sigma[:, None] ** 2 * exact.score(x, sigma, y))


def _tiny_validation():
    spec = importlib.util.spec_from_file_location("validate_bayes_gradient", BENCH / "validate_bayes_gradient.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The fast test's fit: seconds at 1 thread on the 28x28 GaussianClassImages of the benchmark.
TINY = dict(n_train=512, n_test=200, epochs=2, width=4, batch_size=64, sigmas=(0.25,))
#: Its floors, about half of what it measured (Bayes 0.30 noisy / 0.34 clean, class score 0.90 at
#: sigma 0.25, 53 s under load 14 on 2 cores): chance is a mean cosine within
#: 3 / sqrt(200 * 784) ~ 0.008 of zero; the "none"-label design measured -0.02 even on a larger
#: tiny fit (1,024 images, 3 epochs, width 8).
TINY_MIN_BAYES_COSINE = 0.15
TINY_MIN_COND_COSINE = 0.75


def test_tiny_fit_learns_the_bayes_gradient_above_chance():
    """A tiny conditional fit already points its Bayes gradient the right way, far above chance."""
    r = _tiny_validation().measure(**TINY)
    row = r["rows"][0]
    assert row["bayes_noisy"] > TINY_MIN_BAYES_COSINE
    assert row["bayes_clean"] > TINY_MIN_BAYES_COSINE
    assert row["cond_noisy"] > TINY_MIN_COND_COSINE


@pytest.mark.slow
def test_validation_thresholds_of_issue_20():
    """The benchmark's fit meets every threshold against the exact answers (about 11 minutes
    at 1 thread: 40,000 images; measured 0.88 at sigma 0.1, 0.915-0.94 at sigma >= 0.2)."""
    module = _tiny_validation()
    r = module.measure()
    for name, (worst, passed) in module.verdict(r["rows"]).items():
        assert passed, f"{name}: {worst:.4f} < {module.THRESHOLDS[name]}"
