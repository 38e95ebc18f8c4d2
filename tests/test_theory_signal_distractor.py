"""The sympy derivation of Theorem 3.2, and its agreement with the numeric implementation."""

import pytest
import torch

from manifold_lab.data import LinearSignalDistractor
from manifold_lab.data._directions import random_orthonormal
from theory.signal_distractor import derive


@pytest.fixture(scope="module")
def derivation():
    return derive(signal_dim=2, distractor_dim=2, normal_dim=1, n_classes=3)


def test_distractor_and_normal_components_vanish_symbolically(derivation):
    assert derivation.distractor_component_vanishes
    assert derivation.normal_component_vanishes
    assert derivation.posterior_is_linear_softmax
    assert derivation.signal_gradient_matches
    # The signal gradient is not (trivially) zero.
    assert not all(g.is_zero_matrix for g in derivation.signal_gradient)


def test_the_check_can_fail():
    # Control: a label-dependent distractor (not Definition 3) keeps a distractor gradient.
    broken = derive(signal_dim=1, distractor_dim=1, normal_dim=1, n_classes=2, label_dependent_distractor=True)
    assert not broken.distractor_component_vanishes
    assert broken.normal_component_vanishes


@pytest.mark.parametrize("rotated", [False, True])
def test_symbolic_result_matches_the_implementation(derivation, rotated):
    gen = torch.Generator().manual_seed(3)
    d = 5
    frame = random_orthonormal(d, d, gen) if rotated else torch.eye(d, dtype=torch.float64)
    means = torch.randn(3, 2, generator=gen, dtype=torch.float64) * 1.5
    probs = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    offset = torch.randn(d, generator=gen, dtype=torch.float64) if rotated else torch.zeros(d, dtype=torch.float64)
    tau_s, tau_d, sigma = 0.8, 1.7, 0.3
    dist = LinearSignalDistractor(frame[:, :2], frame[:, 2:4], means, offset=offset, signal_std=tau_s,
                                  distractor_std=tau_d, noise_std=sigma, class_probs=probs.tolist())
    f = derivation.numeric()
    x = offset + torch.randn(6, d, generator=gen, dtype=torch.float64) @ frame.T * 2
    coords = (x - offset) @ frame  # (x_s, x_d, x_n)
    for i in range(len(x)):
        c = coords[i].tolist()
        log_post, grad = f(c[:2], c[2:4], c[4:], means.tolist(), tau_s, tau_d, sigma, probs.log().tolist())
        log_post = torch.tensor(log_post, dtype=torch.float64)
        grad_ambient = torch.tensor(grad, dtype=torch.float64) @ frame.T  # chain rule: x = b + Q coords
        assert torch.allclose(dist.log_posterior(x[i]), log_post, rtol=1e-12, atol=1e-12)
        assert torch.allclose(dist.posterior_grads(x[i]), grad_ambient, rtol=1e-10, atol=1e-12)
