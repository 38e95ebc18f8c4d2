"""Users' checkpoints in the layouts RobustBench and MadryLab ``robustness`` write (files written here)."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

from manifold_lab.models import build_architecture
from manifold_lab.training import CheckpointError, load_user_checkpoint

ARCH = "preact_resnet18"  # the smallest zoo architecture with 32×32 inputs
CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]


@pytest.fixture(scope="module")
def source():
    """A trained-looking network (seed 5, BN statistics moved) whose weights the files carry."""
    net = build_architecture(ARCH, seed=5)
    with torch.no_grad():
        for k, v in net.state_dict().items():
            if k.endswith("running_mean"):
                v.add_(0.01)
    return net.eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _expected(net, x, mean=None, std=None):
    with torch.no_grad():
        if mean is None:
            return net(x)
        m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
        return net((x - m) / s)


def _prefixed(state, prefix):
    return collections.OrderedDict((prefix + k, v) for k, v in state.items())


def _robustbench_normalized(state):
    """RobustBench's ``normalize_model``: Sequential(normalize=ImageNormalizer, model=net)."""
    out = collections.OrderedDict(
        [("normalize.mean", torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)),
         ("normalize.std", torch.tensor(CIFAR_STD).view(1, 3, 1, 1))])
    return out | _prefixed(state, "model.")


def _madrylab(state):
    """MadryLab robustness: AttackerModel(normalizer, model, attacker(normalizer, model)) in DataParallel."""
    norm = {"normalizer.new_mean": torch.tensor(CIFAR_MEAN).view(3, 1, 1),
            "normalizer.new_std": torch.tensor(CIFAR_STD).view(3, 1, 1)}
    inner = collections.OrderedDict(norm) | _prefixed(state, "model.")
    inner |= _prefixed(collections.OrderedDict(norm) | _prefixed(state, "model."), "attacker.")
    return _prefixed(inner, "module.")


#: name -> (build the saved object from a state_dict, normalisation the loader must find)
LAYOUTS = {
    "plain": (lambda s: s, None),
    "robustbench_state_dict_module": (lambda s: {"state_dict": _prefixed(s, "module.")}, None),
    "robustbench_normalize_model": (lambda s: _robustbench_normalized(s), (CIFAR_MEAN, CIFAR_STD)),
    "model_key_prefixed": (lambda s: {"model": _prefixed(s, "model."), "epoch": 3}, None),
    "madrylab": (lambda s: {"model": _madrylab(s), "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
                            "schedule": {"last_epoch": 90}, "epoch": 90}, (CIFAR_MEAN, CIFAR_STD)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_load_and_reproduce_the_source_outputs(tmp_path, source, images, layout):
    build, norm = LAYOUTS[layout]
    path = tmp_path / "ckpt.pt"
    torch.save(build(source.state_dict()), path)
    loaded = load_user_checkpoint(path, ARCH, normalization="auto" if norm else "none")
    expected = _expected(source, images, *(norm or (None, None)))
    with torch.no_grad():
        got = loaded.model(images)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert (loaded.normalization is None) == (norm is None)
    if norm is not None:
        assert loaded.normalization_source.startswith("checkpoint:")
        assert torch.allclose(torch.tensor(loaded.normalization[0]), torch.tensor(norm[0]))
    assert not loaded.model.training


def test_explicit_normalisation_wraps_a_plain_checkpoint(tmp_path, source, images):
    path = tmp_path / "plain.pt"
    torch.save(source.state_dict(), path)
    loaded = load_user_checkpoint(path, ARCH, normalization=(CIFAR_MEAN, CIFAR_STD))
    assert loaded.normalization_source == "argument"
    with torch.no_grad():
        assert torch.allclose(loaded.model(images), _expected(source, images, CIFAR_MEAN, CIFAR_STD), atol=1e-5)


def test_normalisation_none_ignores_checkpoint_buffers(tmp_path, source, images):
    path = tmp_path / "madry.pt"
    torch.save({"model": _madrylab(source.state_dict())}, path)
    loaded = load_user_checkpoint(path, ARCH, normalization=None)
    with torch.no_grad():
        assert torch.allclose(loaded.model(images), _expected(source, images), atol=1e-5)


def test_conflicting_normalisation_is_a_one_line_error(tmp_path, source):
    path = tmp_path / "madry.pt"
    torch.save({"model": _madrylab(source.state_dict())}, path)
    with pytest.raises(CheckpointError, match="carries normalisation") as info:
        load_user_checkpoint(path, ARCH, normalization=([0.5] * 3, [0.5] * 3))
    assert "\n" not in str(info.value)


class _Pickled(nn.Module):
    """A class the file can only be loaded with: unpickling it imports and runs code."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 2)


def test_code_carrying_checkpoint_is_refused_unless_allowed(tmp_path, source):
    path = tmp_path / "whole_model.pt"
    torch.save(source, path)  # a pickled nn.Module: needs the class code to load
    with pytest.raises(CheckpointError, match="needs code to load.*allow_code") as info:
        load_user_checkpoint(path, ARCH)
    assert "\n" not in str(info.value)
    loaded = load_user_checkpoint(path, ARCH, allow_code=True, normalization="none")
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), source(x), atol=1e-6)


def test_custom_class_inside_a_dict_is_refused(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"state_dict": _Pickled()}, path)
    with pytest.raises(CheckpointError, match="needs code to load"):
        load_user_checkpoint(path, ARCH)


def test_missing_and_unexpected_keys_are_named_on_one_line(tmp_path, source):
    state = dict(source.state_dict())
    del state["linear.bias"], state["layer2.0.shortcut.0.weight"]
    state["extra_head.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_user_checkpoint(path, ARCH)
    msg = str(info.value)
    assert "\n" not in msg
    assert "2 missing" in msg and "linear.bias" in msg and "layer2.0.shortcut.0.weight" in msg
    assert "1 unexpected" in msg and "extra_head.weight" in msg


def test_shape_mismatch_is_one_line(tmp_path, source):
    path = tmp_path / "ten.pt"
    torch.save(source.state_dict(), path)
    with pytest.raises(CheckpointError, match="shape mismatch.*linear") as info:
        load_user_checkpoint(path, ARCH, n_classes=100, normalization="none")
    assert "\n" not in str(info.value)


def test_wrong_architecture_is_a_key_error(tmp_path, source):
    path = tmp_path / "preact.pt"
    torch.save(source.state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit --arch resnet18"):
        load_user_checkpoint(path, "resnet18")


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"hello world\n", None])
def test_missing_or_corrupt_file_is_one_line(tmp_path, source, content):
    path = tmp_path / "broken.pt"
    if content is None:  # truncated real file
        torch.save(source.state_dict(), path)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="unreadable or truncated") as info:
        load_user_checkpoint(path, ARCH)
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="not found"):
        load_user_checkpoint(tmp_path / "nope.pt", ARCH)


def test_file_without_a_state_dict_names_its_keys(tmp_path):
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "acc": 0.9}, path)
    with pytest.raises(CheckpointError, match="no state_dict.*'epoch'"):
        load_user_checkpoint(path, ARCH)


def test_no_normaliser_and_no_option_is_a_one_line_error_listing_the_choices(tmp_path, source):
    path = tmp_path / "plain.pt"
    torch.save(source.state_dict(), path)
    with pytest.raises(CheckpointError, match="carries no input normaliser") as info:
        load_user_checkpoint(path, ARCH)
    msg = str(info.value)
    assert "\n" not in msg and "none|cifar10|imagenet|half" in msg


def test_named_normalisations_wrap_with_their_numbers(tmp_path, source, images):
    path = tmp_path / "plain.pt"
    torch.save(source.state_dict(), path)
    for name, (mean, std) in {"cifar10": (CIFAR_MEAN, CIFAR_STD), "half": ([0.5] * 3, [0.5] * 3)}.items():
        loaded = load_user_checkpoint(path, ARCH, normalization=name)
        assert loaded.normalization_source == f"argument:{name}"
        with torch.no_grad():
            assert torch.allclose(loaded.model(images), _expected(source, images, mean, std), atol=1e-5)


def test_madrylab_normaliser_clamps_unless_told_not_to(tmp_path, source):
    """MadryLab's InputNormalize computes (clamp(x, 0, 1) − mean) / std; noisy inputs show the difference."""
    path = tmp_path / "madry.pt"
    torch.save({"model": _madrylab(source.state_dict())}, path)
    noisy = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 3 - 1  # [-1, 2]
    clamped = _expected(source, noisy.clamp(0, 1), CIFAR_MEAN, CIFAR_STD)
    loaded = load_user_checkpoint(path, ARCH)
    assert loaded.clamp
    with torch.no_grad():
        assert torch.allclose(loaded.model(noisy), clamped, atol=1e-5)
        off = load_user_checkpoint(path, ARCH, clamp=False)
        assert torch.allclose(off.model(noisy), _expected(source, noisy, CIFAR_MEAN, CIFAR_STD), atol=1e-5)


def test_in_project_architecture_needs_no_normalisation(tmp_path):
    net = build_architecture("resnet18", seed=1)
    path = tmp_path / "r18.pt"
    torch.save(net.state_dict(), path)
    loaded = load_user_checkpoint(path, "resnet18")
    assert loaded.normalization is None and loaded.normalization_source == "in-project"
