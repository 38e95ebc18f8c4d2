"""The paper's directional variant: unit directions, fresh per point, shared across ε."""

import pytest
import torch
from torch import nn

from manifold_lab.metrics import directional_robustness

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_basis(*batch, d, k, seed=0):
    return torch.linalg.qr(torch.randn(*batch, d, k, generator=gen(seed), dtype=F64)).Q


class Linear(nn.Module):
    def __init__(self, W):
        super().__init__()
        self.W = W

    def forward(self, x):
        return x @ self.W.T


def test_unit_norm_directions_split_exactly():
    # z = W x with squared_logit distance gives ε²‖W v‖². W = I: ‖v‖ = 1 exactly on
    # and off; W = P_T: the tangent direction is kept whole, the normal one removed.
    d, k, n = 9, 3, 4
    B = random_basis(d=d, k=k)
    x = torch.randn(n, d, dtype=F64, generator=gen(1))
    eps = torch.tensor([0.01, 1.0, 7.0], dtype=F64)
    r = directional_robustness(Linear(torch.eye(d, dtype=F64)), x, B, eps, distance="squared_logit", generator=gen(2))
    torch.testing.assert_close(r.on_per_point, (eps**2).expand(n, 3), rtol=1e-12, atol=0)
    torch.testing.assert_close(r.off_per_point, (eps**2).expand(n, 3), rtol=1e-12, atol=0)
    r = directional_robustness(Linear(B @ B.T), x, B, eps, distance="squared_logit", generator=gen(2))
    torch.testing.assert_close(r.on_per_point, (eps**2).expand(n, 3), rtol=1e-12, atol=0)
    assert float(r.off_per_point.max()) < 1e-28  # rounding of ‖P_T v_N‖² only


def test_fresh_directions_per_point_shared_across_eps():
    d, n = 7, 6
    B = random_basis(d=d, k=2)
    W = torch.randn(3, d, dtype=F64, generator=gen(3))
    x = torch.zeros(1, d, dtype=F64).expand(n, d)  # identical points
    eps = torch.tensor([0.1, 0.2, 3.0], dtype=F64)
    r = directional_robustness(Linear(W), x, B, eps, n_directions=2, distance="squared_logit", generator=gen(4))
    per_eps = r.off_per_point / eps**2
    # Same directions at every ε: for a linear model the value scales exactly as ε².
    torch.testing.assert_close(per_eps, per_eps[:, :1].expand_as(per_eps), rtol=1e-12, atol=0)
    # Fresh directions per point: identical points still get different values.
    assert per_eps[:, 0].unique().numel() == n


def test_softmax_l1_and_callable_distance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 10), nn.Tanh(), nn.Linear(10, 4)).double()
    x = torch.randn(3, 5, dtype=F64, generator=gen(5))
    B = random_basis(3, d=5, k=2)
    kw = dict(n_directions=4, generator=None)
    r = directional_robustness(model, x, B, [0.1, 10.0], distance="softmax_l1", **{**kw, "generator": gen(6)})
    assert float(r.on.min()) >= 0 and float(r.off.max()) <= 2  # ‖p − q‖₁ ≤ 2
    ref = lambda a, b: (a.softmax(1) - b.softmax(1)).abs().sum(1)
    r2 = directional_robustness(model, x, B, [0.1, 10.0], distance=ref, **{**kw, "generator": gen(6)})
    torch.testing.assert_close(r.off_per_point, r2.off_per_point, rtol=1e-12, atol=0)
    const = Linear(torch.zeros(4, 5, dtype=F64))
    assert float(directional_robustness(const, x, B, 1.0, generator=gen(0)).off.max()) == 0


def test_model_mode_restored_and_eval_used():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.9), nn.Linear(8, 3)).double().train()
    x = torch.randn(2, 5, dtype=F64, generator=gen(7))
    B = random_basis(d=5, k=2)
    a = directional_robustness(model, x, B, 0.5, generator=gen(1))
    b = directional_robustness(model, x, B, 0.5, generator=gen(1))
    torch.testing.assert_close(a.on, b.on, rtol=0, atol=0)  # dropout off: deterministic
    assert model.training and model[1].training
    assert a.eps.tolist() == [0.5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(basis=torch.eye(4, dtype=F64)), "between 1 and 3 columns"),
        (dict(eps=[-0.1]), "eps must be finite and > 0"),
        (dict(distance="l2"), "distance must be one of"),
        (dict(distance=lambda a, b: a), r"distance must return shape \[\d+\], got"),
        (dict(n_directions=0), "n_directions"),
    ],
)
def test_bad_input_one_line_errors(kwargs, match):
    args = dict(basis=torch.eye(4, dtype=F64)[:, :2], eps=[0.1])
    args.update(kwargs)
    basis, eps = args.pop("basis"), args.pop("eps")
    model = Linear(torch.ones(3, 4, dtype=F64))
    with pytest.raises(ValueError, match=match) as info:
        directional_robustness(model, torch.ones(2, 4, dtype=F64), basis, eps, **args)
    assert "\n" not in str(info.value)
