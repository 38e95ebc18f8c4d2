"""``AvgPool2x2`` gives ``nn.AvgPool2d(2)``'s numbers bitwise: outputs, input gradients of
first and second order, and whole training runs of ``SmallCNN`` under every regulariser."""

import functools

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from manifold_lab import models
from manifold_lab.models.pooling import AvgPool2x2, avg_pool_2x2
from manifold_lab.training import augment, make_objective, train

REFERENCE = nn.AvgPool2d(2)


def _with_torch_pooling(net: models.SmallCNN) -> models.SmallCNN:
    """``net`` with ``nn.AvgPool2d(2)`` where ``AvgPool2x2`` stands (the reference)."""
    for i, layer in enumerate(net.features):
        if isinstance(layer, AvgPool2x2):
            net.features[i] = nn.AvgPool2d(2)
    return net


@given(n=st.integers(0, 5), c=st.integers(1, 6), h=st.integers(2, 13), w=st.integers(2, 13),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**16))
def test_outputs_and_gradients_are_bitwise_those_of_avgpool2d(n, c, h, w, dtype, seed):
    x = torch.randn(n, c, h, w, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    weight = torch.randn(n, c, h // 2, w // 2, dtype=dtype, generator=torch.Generator().manual_seed(seed + 1))
    results = []
    for pool in (REFERENCE, avg_pool_2x2):
        xr = x.clone().requires_grad_()
        out = pool(xr)
        (grad,) = torch.autograd.grad((out * weight).sum().sin(), xr, create_graph=True)
        (second,) = torch.autograd.grad(grad.square().sum(), xr) if n else (grad,)
        results.append((out.detach(), grad.detach(), second))
    for ours, theirs in zip(results[1], results[0]):
        assert ours.shape == theirs.shape and torch.equal(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_small_size_is_bitwise_that_of_avgpool2d(dtype):
    """Every size up to 13x13, 1x1 outputs included (where the convolution sums in
    another order and the pooling falls back to ``F.avg_pool2d``)."""
    gen = torch.Generator().manual_seed(0)
    for h in range(2, 14):
        for w in range(2, 14):
            x = torch.randn(2, 3, h, w, dtype=dtype, generator=gen)
            assert torch.equal(avg_pool_2x2(x), REFERENCE(x)), (h, w)


def test_gradients_pass_torch_gradcheck_to_second_order():
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(avg_pool_2x2, (x,)) and torch.autograd.gradgradcheck(avg_pool_2x2, (x,))


@pytest.mark.parametrize("objective,strength,options", [
    ("none", 0.0, {}), ("pgd_l2", 1.0, {"steps": 2}), ("gradient_norm", 1.0, {}),
    ("smoothness", 10.0, {}), ("noise_augmentation", 0.3, {}),
])
def test_training_a_small_cnn_gives_the_same_weights_as_with_avgpool2d(objective, strength, options):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(48, 1, 12, 12, generator=gen), torch.randint(0, 10, (48,), generator=gen)
    weights = []
    for torch_pooling in (True, False):
        net = models.SmallCNN(image_size=12, activation="gelu", channels=(4, 8), seed=3)
        if torch_pooling:
            _with_torch_pooling(net)
        result = train(net, make_objective(objective, strength, **options), data=(x, y), epochs=1, lr=1e-2,
                       batch_size=16, augment=functools.partial(augment.shift, padding=1), seed=0, progress=False)
        weights.append(result.model.state_dict())
    assert list(weights[0]) == list(weights[1])  # no pooling keys: checkpoints are unchanged
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match=r"needs images \[n, c, h, w\], got shape \[3, 4\]"):
        AvgPool2x2()(torch.zeros(3, 4))


def test_the_pooling_benchmark_compares_equal_numbers_at_tiny_size():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pooling.py"
    spec = importlib.util.spec_from_file_location("bench_pooling", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    layer = bench.bench_layer((2, 3, 6, 6), repeats=1, passes=2)
    step = bench.bench_training("gradient_norm", 1.0, {}, images=8, repeats=1)
    for row in (layer, step):
        assert row["same"] is True and row["torch_s"] > 0 and row["ours_s"] > 0
    with pytest.raises(SystemExit):
        bench.main(["--images", "0"])


def test_other_devices_use_torchs_own_pooling():
    """Bitwise equality is checked on the CPU only; elsewhere it is ``F.avg_pool2d`` itself."""
    x = torch.zeros(2, 3, 5, 4, device="meta")
    assert avg_pool_2x2(x).shape == (2, 3, 2, 2) and avg_pool_2x2(x).device.type == "meta"
