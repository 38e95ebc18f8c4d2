"""Coordinate-mask signal–distractor images: mask, bases, exact Theorem 3.2."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from manifold_lab.data import MaskedImageSignalDistractor, central_square_mask
from manifold_lab.models import BayesOptimalClassifier


@pytest.fixture(scope="module")
def dist():
    return MaskedImageSignalDistractor((3, 12, 10), n_classes=4, signal_dim=5, distractor_dim=7,
                                       noise_std=0.05, seed=2)


def test_mask_and_shapes(dist):
    assert dist.ambient_dim == 3 * 12 * 10
    assert dist.mask.shape == (3, 12, 10) and dist.mask.dtype == torch.bool
    assert torch.equal(dist.mask, central_square_mask((3, 12, 10)))
    assert int(dist.mask.sum()) == 3 * 6 * 5
    x, y = dist.sample(6, generator=torch.Generator().manual_seed(0))
    assert dist.to_images(x).shape == (6, 3, 12, 10)
    assert dist.class_templates().shape == (4, 3, 12, 10)


def test_bases_live_on_their_pixels(dist):
    flat = dist.mask.flatten()
    s, d = dist.signal_basis, dist.distractor_basis
    assert (s[~flat] == 0).all() and (d[flat] == 0).all()
    frame = torch.cat([s, d], dim=1)
    assert torch.allclose(frame.T @ frame, torch.eye(12, dtype=torch.float64), atol=1e-13)



def test_patterns_are_smooth():
    # For white noise E|x_i - x_(i+1)| / E|x_i| = sqrt(2); the lowest-frequency
    # cosines of a 14-pixel box change by ~pi v / 14 per pixel: demand < 0.5.
    d = MaskedImageSignalDistractor((1, 28, 28), signal_dim=5, distractor_dim=5, seed=0)
    img = d.signal_basis.T.reshape(5, 28, 28)[:, 7:21, 7:21]  # the central square
    assert img.diff(dim=-1).abs().mean() < 0.5 * img.abs().mean()
    assert img.diff(dim=-2).abs().mean() < 0.5 * img.abs().mean()
    noise = torch.randn(14, 14, generator=torch.Generator().manual_seed(0))
    assert noise.diff(dim=-1).abs().mean() > 1.2 * noise.abs().mean()  # the contrast is real


@given(seed=st.integers(0, 10_000), magnitude=st.floats(1e-3, 1e9))
def test_posterior_bitwise_invariant_to_any_distractor_pixels(seed, magnitude):
    # The coordinate-mask case of Theorem 3.2 holds exactly in floating point:
    # the posterior reads only signal pixels, through bases that are exactly 0 elsewhere.
    d = _DIST.setdefault("d", MaskedImageSignalDistractor((1, 8, 8), n_classes=3, signal_dim=4,
                                                          distractor_dim=6, seed=0))
    gen = torch.Generator().manual_seed(seed)
    x, y = d.sample(16, generator=gen, dtype=torch.float64)
    other = x.clone()
    off = ~d.mask.flatten()
    other[:, off] = magnitude * torch.randn(16, int(off.sum()), generator=gen, dtype=torch.float64)
    assert torch.equal(d.log_posterior(x), d.log_posterior(other))
    assert torch.equal(d.posterior_grad(x, y), d.posterior_grad(other, y))


_DIST = {}


def test_gradient_is_exactly_zero_on_distractor_pixels(dist):
    x, y = dist.sample(32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x.requires_grad_(True)
    (auto,) = torch.autograd.grad(dist.log_posterior(x).gather(1, y[:, None]).sum(), x)
    off = ~dist.mask.flatten()
    assert (auto[:, off] == 0).all()
    assert (dist.posterior_grad(x.detach(), y)[:, off] == 0).all()
    assert (auto[:, ~off] != 0).any()


def test_bayes_classifier_accepts_images(dist):
    model = BayesOptimalClassifier(dist)
    x, _ = dist.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(dist.to_images(x)), model(x))


def test_custom_mask_and_seed(dist):
    mask = torch.zeros(12, 10, dtype=torch.bool)
    mask[:, :5] = True  # left half carries the label
    d = MaskedImageSignalDistractor((3, 12, 10), signal_dim=3, distractor_dim=3, mask=mask, seed=2)
    assert d.mask.shape == (3, 12, 10) and bool(d.mask[:, :, :5].all()) and not bool(d.mask[:, :, 5:].any())
    d2 = MaskedImageSignalDistractor((3, 12, 10), signal_dim=3, distractor_dim=3, mask=mask, seed=2)
    assert torch.equal(d.signal_basis, d2.signal_basis)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_shape=(28, 28)), "image_shape"),
    (dict(image_shape=(1, 4, 4), signal_dim=5), "signal_dim"),
    (dict(image_shape=(1, 4, 4), signal_dim=2, distractor_dim=20), "distractor_dim"),
    (dict(image_shape=(1, 4, 4), mask=torch.ones(3, 3, dtype=torch.bool)), "mask must have shape"),
    (dict(image_shape=(1, 4, 4), mask=torch.ones(4, 4)), "bool"),
    (dict(image_shape=(1, 4, 4), signal_dim=1, distractor_dim=1, noise_std=0.0), "noise_std"),
    (dict(image_shape=(1, 4, 4), signal_dim=1, distractor_dim=1, background=float("nan")), "background"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedImageSignalDistractor(**kwargs)
