"""input_gradient / scalar_fn: the explicit scalar, batching, eval mode, no parameter grads."""

import pytest
import torch
from torch import nn

from manifold_lab.metrics import input_gradient, scalar_fn, scalar_gradient

F64 = torch.float64


def mlp(d=5, c=3, seed=0):
    torch.manual_seed(seed)  # test-only: seeds the default initialisation
    return nn.Sequential(nn.Linear(d, 16), nn.Softplus(), nn.Linear(16, c)).double()


def scalar_of(out, y, target):
    # Independent reference for one example's scalar.
    if target == "logit":
        return out[y]
    if target == "log_softmax":
        return out[y] - torch.logsumexp(out, 0)
    return out.sum()


def finite_difference_grad(model, x, y, target, h=1e-6):
    # Central differences in float64: truncation O(h²)·f''' ≈ 1e-12, rounding eps/h ≈ 1e-10.
    g = torch.zeros_like(x)
    with torch.no_grad():
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                e = torch.zeros_like(x[i]); e[j] = h
                fp = scalar_of(model((x[i] + e)[None])[0], int(y[i]), target)
                fm = scalar_of(model((x[i] - e)[None])[0], int(y[i]), target)
                g[i, j] = (fp - fm) / (2 * h)
    return g


@pytest.mark.parametrize("target", ["logit", "log_softmax", "sum_logits"])
def test_matches_finite_differences(target):
    model = mlp()
    x = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 2, 1, 2])
    g = input_gradient(model, x, y, target=target)
    torch.testing.assert_close(g, finite_difference_grad(model, x, y, target), rtol=1e-6, atol=1e-8)


def test_sum_logits_ignores_labels_and_default_is_predicted_class():
    model = mlp()
    x = torch.randn(6, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
    g1 = input_gradient(model, x, torch.zeros(6, dtype=torch.long), target="sum_logits")
    torch.testing.assert_close(g1, input_gradient(model, x, target="sum_logits"))
    pred = model(x).argmax(1)
    torch.testing.assert_close(input_gradient(model, x), input_gradient(model, x, pred))


def test_callable_target_and_int_label():
    model = mlp()
    x = torch.randn(3, 5, dtype=F64, generator=torch.Generator().manual_seed(3))
    g = input_gradient(model, x, 1, target=lambda out, y: 2.0 * out.gather(1, y[:, None]).squeeze(1))
    torch.testing.assert_close(g, 2 * input_gradient(model, x, 1, target="logit"))


def test_batchnorm_train_mode_model_gives_per_example_eval_gradients_and_is_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)).double()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        model.train()(torch.randn(64, 5, dtype=F64) * 3 + 1)
    model.train()
    model[1].eval()  # a deliberately mixed mode must come back as it was
    modes = [m.training for m in model.modules()]
    stats = [t.clone() for t in (model[1].running_mean, model[1].running_var)]
    x = torch.randn(5, 5, dtype=F64, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 1, 2, 0, 1])
    batch = input_gradient(model, x, y)
    single = torch.cat([input_gradient(model, x[i : i + 1], y[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batch, single, rtol=1e-10, atol=1e-12)
    assert [m.training for m in model.modules()] == modes
    torch.testing.assert_close(model[1].running_mean, stats[0], rtol=0, atol=0)
    torch.testing.assert_close(model[1].running_var, stats[1], rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())


def test_image_inputs_keep_shape():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 36, 3)).double()
    x = torch.randn(2, 1, 6, 6, dtype=F64, generator=torch.Generator().manual_seed(5))
    g = input_gradient(cnn, x, torch.tensor([0, 2]), target="logit")
    assert g.shape == x.shape and not g.requires_grad
    # One coordinate by central differences (same error budget as above).
    h, e = 1e-6, torch.zeros_like(x[:1]); e[0, 0, 2, 3] = h
    with torch.no_grad():
        fd = (cnn(x[:1] + e)[0, 0] - cnn(x[:1] - e)[0, 0]) / (2 * h)
    torch.testing.assert_close(g[0, 0, 2, 3], fd, rtol=1e-6, atol=1e-9)


def test_scalar_fn_index_selects_each_points_label():
    model = mlp()
    y = torch.tensor([2, 0, 1])
    f = scalar_fn(model, y, target="log_softmax")
    x = torch.randn(6, 5, dtype=F64, generator=torch.Generator().manual_seed(6))
    idx = torch.tensor([1, 1, 0, 2, 2, 0])
    ref = torch.log_softmax(model(x), 1)[torch.arange(6), y[idx]]
    torch.testing.assert_close(f(x, index=idx), ref)
    torch.testing.assert_close(f(x[:3]), torch.log_softmax(model(x[:3]), 1)[torch.arange(3), y])


def test_scalar_gradient_of_plain_function():
    x = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(scalar_gradient(lambda z: (z**3).sum(1), x), 3 * x**2)
    torch.testing.assert_close(scalar_gradient(lambda z: torch.ones(z.shape[0], dtype=F64), x), torch.zeros_like(x))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, x: input_gradient(m, x, target="prob"), "target must be one of"),
        (lambda m, x: scalar_fn(m, target="logit"), "needs the class y"),
        (lambda m, x: input_gradient(m, x, torch.tensor([0, 5]), target="logit"), r"class indices y must lie in \[0, 3\)"),
        (lambda m, x: input_gradient(m, x, torch.tensor([0.5, 1.0])), "integer tensor"),
        (lambda m, x: input_gradient(m, x, target=lambda o, y: o), "shape \\[2\\]"),
        (lambda m, x: input_gradient(m, x * float("nan")), "NaN"),
    ],
)
def test_bad_input_one_line_errors(call, match):
    x = torch.randn(2, 5, dtype=F64)
    with pytest.raises(ValueError, match=match) as info:
        call(mlp(), x)
    assert "\n" not in str(info.value)
