"""MLP, SmallCNN, ResNet18: shapes, seeded global-state-free init, configs that rebuild the model."""

import json
import math

import pytest
import torch
from torch import nn

from manifold_lab.models import MLP, MODEL_CLASSES, ResNet18, SmallCNN, build_model, seeded_init

# Small instances of every network, with a matching input batch.
CASES = {
    "MLP": (lambda seed=0: MLP(12, 3, hidden=(16, 8), seed=seed), (5, 12)),
    "SmallCNN": (lambda seed=0: SmallCNN(2, 4, image_size=12, seed=seed), (5, 2, 12, 12)),
    "ResNet18": (lambda seed=0: ResNet18(3, 5, width=4, seed=seed), (5, 3, 8, 8)),
}


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_shape_and_finite(name):
    make, shape = CASES[name]
    model = make()
    out = model(torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (shape[0], model.n_classes) and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_weights_other_seed_other_weights(name):
    make, _ = CASES[name]
    assert _equal(_state(make(3)), _state(make(3)))
    a, b = _state(make(3)), _state(make(4))
    assert not all(torch.equal(a[k], b[k]) for k in a if k.endswith("weight"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_construction_leaves_global_rng_alone(name):
    make, _ = CASES[name]
    before = torch.random.get_rng_state()
    make()
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_is_json_and_rebuilds_identical_model(name):
    make, _ = CASES[name]
    model = make(7)
    config = json.loads(json.dumps(model.config()))
    rebuilt = build_model(name, config)
    assert type(rebuilt) is MODEL_CLASSES[name] and _equal(_state(model), _state(rebuilt))


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_and_gradients_flow(name):
    make, shape = CASES[name]
    model = make().double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())


def test_init_matches_pytorch_default_law():
    # PyTorch's default Linear init is U(-b, b), b = 1/sqrt(fan_in), for weight and bias.
    # n = 256,000 iid draws: P(max|w| < b(1 - 1e-3)) = (1 - 1e-3)^n ~ e^-256; the sample
    # variance (b^2/3) has relative SE sqrt(0.8/n) ~ 0.18%, so 2% is > 10 SE; the mean has
    # SE b/sqrt(3n), bounded by 5 SE.
    fan_in = 1000
    layer = MLP(fan_in, 256, hidden=(), seed=1).net[0]
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.detach().double()
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > bound * (1 - 1e-3)
    assert float(w.var()) == pytest.approx(bound**2 / 3, rel=0.02)
    assert abs(float(w.mean())) < 5 * bound / math.sqrt(3 * w.numel())
    assert float(layer.bias.detach().abs().max()) <= bound


def test_resnet18_has_the_standard_cifar_parameter_count():
    # The CIFAR ResNet-18 (3x3 stem, widths 64..512, 10 classes) has 11,173,962 parameters.
    assert sum(p.numel() for p in ResNet18().parameters()) == 11_173_962


def test_resnet_batchnorm_starts_fresh_and_any_channel_count():
    model = ResNet18(1, 2, width=4)
    bn = model.stem[1]
    assert torch.equal(bn.running_mean, torch.zeros(4)) and torch.equal(bn.running_var, torch.ones(4))
    assert int(bn.num_batches_tracked) == 0
    assert model(torch.randn(3, 1, 9, 9)).shape == (3, 2)


def test_mlp_defaults_smooth_and_flattens_images():
    model = MLP(2 * 3 * 3, 4, hidden=(5,))
    assert model.activation == "softplus" and isinstance(model.net[1], nn.Softplus)
    x = torch.randn(6, 2, 3, 3)
    assert torch.equal(model(x), model(x.flatten(1)))
    assert model(torch.randn(2, 7, 18)).shape == (2, 7, 4)  # leading batch dims kept


def test_mlp_without_hidden_layers_is_linear():
    model = MLP(3, 2, hidden=())
    x = torch.randn(4, 3, dtype=torch.float64)
    lin = model.net[0].double()
    assert len(model.net) == 1 and torch.allclose(model.double()(x), x @ lin.weight.T + lin.bias)


def test_small_cnn_odd_sizes_and_channels():
    assert SmallCNN(3, 7, image_size=31)(torch.randn(2, 3, 31, 31)).shape == (2, 7)


def test_small_cnn_conv_channels_set_every_layer_and_round_trip_through_config():
    net = SmallCNN(1, 10, image_size=28, channels=(24, 48), seed=3)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 24), (24, 48)]
    # 3x3 convs, a 48 * 7 * 7 -> 128 hidden layer, 128 -> 10 logits
    n_params = (9 * 1 * 24 + 24) + (9 * 24 * 48 + 48) + (48 * 49 * 128 + 128) + (128 * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == n_params
    rebuilt = build_model("SmallCNN", net.config())
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(rebuilt(x), net(x))
    # the default is left out of the config, so configs written before the option read the same
    assert "channels" not in SmallCNN(seed=0).config() and net.config()["channels"] == [24, 48]


@pytest.mark.parametrize("bad", [
    lambda: MLP(0, 2), lambda: MLP(4, 2, hidden=(3, 0)), lambda: MLP(4, 2, activation="swish2"),
    lambda: SmallCNN(image_size=3), lambda: ResNet18(width=0), lambda: MLP(4, 2, seed=-1),
    lambda: SmallCNN(channels=(8,)), lambda: SmallCNN(channels=(8, 0)),
])
def test_bad_constructor_arguments_are_one_line_value_errors(bad):
    with pytest.raises(ValueError) as err:
        bad()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name,x", [("MLP", torch.randn(2, 5)), ("SmallCNN", torch.randn(2, 1, 12, 12)),
                                    ("ResNet18", torch.randn(2, 2, 8, 8))])
def test_wrong_input_shape_is_value_error(name, x):
    make, _ = CASES[name]
    with pytest.raises(ValueError, match="expects x of shape"):
        make()(x)


def test_build_model_rejects_unknown_class_and_bad_config():
    with pytest.raises(ValueError, match="unknown model class"):
        build_model("VGG", {})
    with pytest.raises(ValueError, match="does not fit"):
        build_model("MLP", {"in_dim": 3, "n_classes": 2, "depth": 4})


def test_seeded_init_reinitialises_in_place_and_rejects_unknown_layers():
    model = MLP(4, 2, hidden=(3,), seed=0)
    seeded_init(model, 5)
    assert _equal(_state(model), _state(MLP(4, 2, hidden=(3,), seed=5)))

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    with pytest.raises(ValueError, match="Custom"):
        seeded_init(nn.Sequential(nn.Linear(3, 3), Custom()), 0)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_models_on_cuda_match_cpu(name, cuda_device):
    make, shape = CASES[name]
    model = make().double().eval()
    x = torch.randn(*shape, dtype=torch.float64)
    cpu = model(x)
    gpu = model.to(cuda_device)(x.to(cuda_device)).cpu()
    assert torch.allclose(cpu, gpu, rtol=1e-10, atol=1e-10)
