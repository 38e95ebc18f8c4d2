"""pgd_l2: per-example balls, closed-form optimum, no side effects on the model."""

import pytest
import torch
from torch import nn

from manifold_lab.training import pgd_l2

# float64 inputs: projection rescales by eps/||d||, exact to a few ulps; 1e-9 relative
# slack covers that with margin.
REL = 1e-9


def _norms(x_adv, x):
    return (x_adv - x).flatten(1).norm(dim=1)


def _linear(d=6, c=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = nn.Linear(d, c).double()
    with torch.no_grad():
        m.weight.copy_(torch.randn(c, d, generator=g, dtype=torch.float64))
        m.bias.copy_(torch.randn(c, generator=g, dtype=torch.float64))
    return m


@pytest.mark.parametrize("random_start", [True, False])
def test_per_example_radius_on_mixed_scales(random_start):
    g = torch.Generator().manual_seed(1)
    scales = torch.tensor([1e-3, 1.0, 1e3, 1e-3, 1e3], dtype=torch.float64)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64) * scales[:, None]
    y = torch.tensor([0, 1, 0, 1, 0])
    eps = scales * 0.5
    x_adv = pgd_l2(_linear(), x, y, eps, steps=20, random_start=random_start, generator=g)
    norms = _norms(x_adv, x)
    assert bool((norms <= eps * (1 + REL)).all())
    # A linear model's loss grows without bound along one direction: every example
    # ends on its own sphere (a batch-wide norm would leave the small ones far inside).
    assert torch.allclose(norms, eps, rtol=1e-6)


def test_linear_model_reaches_closed_form_optimum():
    model = _linear(d=8)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (10,), generator=g)
    eps = 0.7
    # Binary linear softmax: grad_x CE = W^T(p - e_y) = (p_1 - [y=1]) (w_1 - w_0), so the
    # maximiser in the ball is x + eps * s * u with u = (w_1 - w_0)/|w_1 - w_0|, s = +1 for y=0.
    u = model.weight[1] - model.weight[0]
    u = (u / u.norm()).detach()
    sign = (1 - 2 * y).to(torch.float64)[:, None]
    expected = x + eps * sign * u
    x_adv = pgd_l2(model, x, y, eps, steps=5, random_start=False)
    assert torch.allclose(x_adv, expected, atol=1e-12)


def _bn_model():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Softplus(), nn.Dropout(0.5), nn.Linear(8, 3))


def test_modes_restored_grads_untouched_bn_stats_unchanged():
    torch.manual_seed(0)  # test-only global seed for module init
    model = _bn_model()
    model.train()
    model[3].eval()  # a mixed-mode model must come back mixed
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    model[1].register_forward_pre_hook(lambda m, inp: seen.append(m.training))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    pgd_l2(model, x, y, 0.5, steps=3, generator=g)
    assert seen and not any(seen), "BatchNorm must run in eval mode during the attack"
    assert [m.training for m in model.modules()] == [True, True, True, True, False, True]
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_image_shaped_inputs():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 5 * 5, 2)).double()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, 5, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (6,), generator=g)
    eps = torch.linspace(0.1, 2.0, 6, dtype=torch.float64)
    x_adv = pgd_l2(model, x, y, eps, steps=10, generator=g)
    assert x_adv.shape == x.shape
    assert bool((_norms(x_adv, x) <= eps * (1 + REL)).all())
    loss = nn.functional.cross_entropy
    with torch.no_grad():
        assert float(loss(model(x_adv), y)) > float(loss(model(x), y))


class _Constant(nn.Module):
    """Parameter-free model with zero input gradient."""

    def forward(self, x):
        return torch.zeros(x.shape[0], 3, dtype=x.dtype) + 0 * x.flatten(1).sum(1, keepdim=True)


def test_zero_gradient_is_safe():
    x = torch.randn(4, 5, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)
    assert torch.equal(pgd_l2(_Constant(), x, y, 1.0, steps=3, random_start=False), x)
    g = torch.Generator().manual_seed(0)
    x_adv = pgd_l2(_Constant(), x, y, 1.0, steps=3, generator=g)
    assert bool(torch.isfinite(x_adv).all()) and bool((_norms(x_adv, x) <= 1 + REL).all())


def test_bounds_respected_and_ball_kept():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(20, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (20,), generator=g)
    x_adv = pgd_l2(_linear(), x, y, 3.0, steps=10, bounds=(0.0, 1.0), generator=g)
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert bool((_norms(x_adv, x) <= 3.0 * (1 + REL)).all())
    # Not vacuous: the unclamped attack leaves the box.
    free = pgd_l2(_linear(), x, y, 3.0, steps=10, generator=g)
    assert float(free.min()) < 0.0 or float(free.max()) > 1.0


def test_random_start_is_symmetric_and_uniform_in_ball():
    n, d, eps = 20000, 3, 2.0
    x = torch.zeros(n, d, dtype=torch.float64)
    y = torch.zeros(n, dtype=torch.long)
    delta = pgd_l2(_Constant(), x, y, eps, steps=0, generator=torch.Generator().manual_seed(5))
    # Mean of a uniform ball coordinate is 0 with std eps/sqrt(d+2) / sqrt(n): 5 SE bound.
    se = eps / (d + 2) ** 0.5 / n ** 0.5
    assert float(delta.mean(0).abs().max()) < 5 * se
    # Uniform in the ball: P(|delta| <= eps * 0.5**(1/d)) = 1/2; binomial SE 0.5/sqrt(n).
    frac = float((delta.norm(dim=1) <= eps * 0.5 ** (1 / d)).double().mean())
    assert abs(frac - 0.5) < 5 * 0.5 / n ** 0.5


def test_bad_eps_shape_rejected():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="eps"):
        pgd_l2(_Constant(), x, torch.zeros(4, dtype=torch.long), torch.ones(3))


def test_cuda_radius_and_modes(cuda_device):
    model = _bn_model().to(cuda_device)
    g = torch.Generator(device=cuda_device).manual_seed(0)
    x = torch.randn(32, 4, device=cuda_device, generator=g)
    y = torch.randint(0, 3, (32,), device=cuda_device, generator=g)
    eps = torch.linspace(0.01, 3.0, 32, device=cuda_device)
    x_adv = pgd_l2(model, x, y, eps, steps=5, generator=g)
    # float32: projection exact to a few ulps of the radius.
    assert bool((_norms(x_adv, x) <= eps * (1 + 1e-5)).all())
    assert all(p.grad is None for p in model.parameters())
