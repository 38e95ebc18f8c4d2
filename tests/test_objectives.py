"""Objectives: batch-size independence, analytic values, fresh noise, factory."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from manifold_lab.training import (
    REGULARIZERS, CrossEntropy, GradientNorm, NoiseAugmentation, PGDAdversarial,
    Smoothness, make_objective, pgd_l2,
)


def _linear(d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = nn.Linear(d, c).double()
    with torch.no_grad():
        m.weight.copy_(torch.randn(c, d, generator=g, dtype=torch.float64))
        m.bias.copy_(torch.randn(c, generator=g, dtype=torch.float64))
    return m


def _batch(n=7, d=5, c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


@pytest.mark.parametrize("of", ["loss", "logit"])
def test_gradient_norm_same_for_batch_and_duplicated_batch(of):
    model, (x, y) = _linear(), _batch()
    obj = GradientNorm(2.0, of=of)
    loss1, logs1 = obj(model, x, y)
    loss2, logs2 = obj(model, torch.cat([x, x]), torch.cat([y, y]))
    assert torch.allclose(loss1, loss2, rtol=1e-12)
    assert logs1["grad_norm_sq"] == pytest.approx(logs2["grad_norm_sq"], rel=1e-12)


def test_gradient_norm_matches_linear_softmax_closed_form():
    model, (x, y) = _linear(), _batch()
    W = model.weight.detach()
    p = torch.softmax(model(x).detach(), dim=1)
    grad = (p - F.one_hot(y, 3).double()) @ W  # rows: W^T (p - e_y)
    expected_pen = grad.pow(2).sum(1).mean()
    expected_ce = F.cross_entropy(model(x).detach(), y)
    loss, logs = GradientNorm(0.3)(model, x, y)
    assert float(loss.detach()) == pytest.approx(float(expected_ce + 0.3 * expected_pen), rel=1e-12)
    assert logs["grad_norm_sq"] == pytest.approx(float(expected_pen), rel=1e-12)
    # of="logit": grad_x f_y = W[y].
    _, logs = GradientNorm(0.3, of="logit")(model, x, y)
    assert logs["grad_norm_sq"] == pytest.approx(float(W[y].pow(2).sum(1).mean()), rel=1e-12)


def test_gradient_norm_penalty_is_differentiable_in_parameters():
    model, (x, y) = _linear(), _batch()
    loss_a, _ = GradientNorm(0.0)(model, x, y)
    loss_b, _ = GradientNorm(1.0)(model, x, y)
    (ga,) = torch.autograd.grad(loss_a, model.weight)
    (gb,) = torch.autograd.grad(loss_b, model.weight)
    assert not torch.allclose(ga, gb)  # the penalty reaches the weights (create_graph)


class _ConstantModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64))

    def forward(self, x):
        return self.b.expand(x.shape[0], 3)


def test_smoothness_zero_for_constant_model_positive_otherwise():
    x, y = _batch()
    g = torch.Generator().manual_seed(0)
    _, logs = Smoothness(1.0, 0.5)(_ConstantModel(), x, y, generator=g)
    assert logs["logit_change_sq"] == 0.0
    # Linear model: E||W sigma z||^2 = sigma^2 ||W||_F^2; with 7 draws just > 0.
    _, logs = Smoothness(1.0, 0.5)(_linear(), x, y, generator=g)
    assert logs["logit_change_sq"] > 0.0


class _Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 3).double()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.lin(x)


def test_noise_augmentation_draws_fresh_noise_each_batch():
    x, y = _batch(n=2000)
    rec = _Recorder()
    obj = NoiseAugmentation(0.5)
    g = torch.Generator().manual_seed(0)
    obj(rec, x, y, generator=g)
    obj(rec, x, y, generator=g)
    n1, n2 = rec.inputs[0] - x, rec.inputs[1] - x
    assert not torch.equal(n1, n2)
    # std estimate of 1e4 normal draws: relative SE ~ 1/sqrt(2 * 1e4) = 0.7%; 5% bound.
    assert float(n1.std()) == pytest.approx(0.5, rel=0.05)


def test_pgd_adversarial_trains_on_pgd_examples():
    model, (x, y) = _linear(), _batch()
    loss, _ = PGDAdversarial(0.5, steps=4)(model, x, y, generator=torch.Generator().manual_seed(3))
    x_adv = pgd_l2(model, x, y, 0.5, steps=4, generator=torch.Generator().manual_seed(3))
    assert float(loss.detach()) == pytest.approx(float(F.cross_entropy(model(x_adv), y).detach()), rel=1e-12)
    assert float(loss.detach()) > float(F.cross_entropy(model(x), y).detach())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", sorted(REGULARIZERS))
def test_make_objective_every_name(name):
    obj = make_objective(name, 0.2)
    cfg = obj.config()
    assert json.loads(json.dumps(cfg)) == cfg and cfg["name"] == obj.name
    model, (x, y) = _linear(), _batch()
    loss, logs = obj(model, x, y, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and bool(torch.isfinite(loss))
    assert all(isinstance(v, float) for v in logs.values())
    # Strength is really used (except "none").
    if name != "none":
        loss0, _ = make_objective(name, 0.0)(model, x, y, generator=torch.Generator().manual_seed(0))
        loss_big, _ = make_objective(name, 5.0)(model, x, y, generator=torch.Generator().manual_seed(0))
        assert float(loss_big.detach()) != float(loss0.detach())


def test_make_objective_rejects_unknown_and_negative():
    with pytest.raises(ValueError, match="unknown regulariser"):
        make_objective("dropout", 1.0)
    with pytest.raises(ValueError, match="strength"):
        make_objective("gradient_norm", -1.0)
    assert isinstance(make_objective("none", 123.0), CrossEntropy)
