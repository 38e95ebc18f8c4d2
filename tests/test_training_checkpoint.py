"""Checkpoints: state_dict + JSON side file, atomic writes, weights_only loads, one-line errors."""

import hashlib
import json
import os

import pytest
import torch
from torch import nn

from manifold_lab.models import MLP, ResNet18, SmallCNN
from manifold_lab.training import CheckpointError, load_checkpoint, save_checkpoint
from manifold_lab.training.checkpoint import config_path


def _one_line(err):
    return "\n" not in str(err.value)


@pytest.mark.parametrize("model", [MLP(5, 3, hidden=(4,), seed=2), SmallCNN(1, 3, image_size=8, seed=2),
                                   ResNet18(2, 3, width=2, seed=2)], ids=lambda m: type(m).__name__)
def test_round_trip_rebuilds_the_same_model(tmp_path, model):
    with torch.no_grad():  # weights that differ from any fresh init of this config
        for p in model.parameters():
            p.add_(0.125)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, epoch=3, extra={"note": "x", "hist": [1.5]})
    ck = load_checkpoint(path)
    side = json.loads(config_path(path).read_text())
    assert side["model_class"] == type(model).__name__ and side["model_config"] == model.config()
    assert (ck.epoch, ck.extra) == (3, {"note": "x", "hist": [1.5]})
    rebuilt = ck.build_model()
    assert type(rebuilt) is type(model)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), rebuilt.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    # The weights file is plain tensors: loadable with weights_only=True directly.
    raw = torch.load(path, weights_only=True)
    assert raw["optimizer"] is None and set(raw["model"]) == set(model.state_dict())


def test_optimizer_state_round_trip(tmp_path):
    model = MLP(4, 2, hidden=(3,))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "m.pt", model, opt, epoch=1)
    fresh = torch.optim.Adam(MLP(4, 2, hidden=(3,)).parameters(), lr=0.5)
    fresh.load_state_dict(load_checkpoint(tmp_path / "m.pt").optimizer_state)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        assert all(torch.equal(a["state"][i][k], b["state"][i][k]) for k in a["state"][i])


def test_no_temporary_files_left(tmp_path):
    save_checkpoint(tmp_path / "m.pt", MLP(3, 2, hidden=()))
    save_checkpoint(tmp_path / "m.pt", MLP(3, 2, hidden=()), epoch=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json"]


def test_torn_write_is_detected_and_cleaned_up(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    save_checkpoint(path, MLP(3, 2, hidden=(), seed=0), epoch=1)
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_json)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, MLP(3, 2, hidden=(), seed=1), epoch=2)
    monkeypatch.setattr(os, "replace", real_replace)
    # New weights, old side file: the pair must not load as either epoch.
    with pytest.raises(CheckpointError, match="does not match") as err:
        load_checkpoint(path)
    assert _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json"]


def test_missing_and_damaged_files_are_one_line_errors(tmp_path):
    path = tmp_path / "m.pt"
    with pytest.raises(CheckpointError, match="not found") as err:
        load_checkpoint(path)
    assert _one_line(err)
    save_checkpoint(path, MLP(3, 2, hidden=()))
    side = config_path(path)
    good = side.read_text()
    side.write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable") as err:
        load_checkpoint(path)
    assert _one_line(err)
    side.write_text(json.dumps({**json.loads(good), "format": 99}))
    with pytest.raises(CheckpointError, match="unknown format"):
        load_checkpoint(path)
    side.write_text(good)
    side.unlink()
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(path)


def test_weights_only_refuses_pickled_code(tmp_path):
    # A weights file carrying an arbitrary object (here a Module) must not unpickle.
    path = tmp_path / "m.pt"
    save_checkpoint(path, MLP(3, 2, hidden=()))
    torch.save({"model": nn.Linear(2, 2), "optimizer": None}, path)
    side = config_path(path)
    meta = json.loads(side.read_text())
    meta["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    side.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path)


def test_non_json_extra_rejected_before_writing(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "m.pt", MLP(3, 2, hidden=()), extra={"t": torch.zeros(1)})
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_class_cannot_be_rebuilt_but_state_loads(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    save_checkpoint(tmp_path / "m.pt", model)
    ck = load_checkpoint(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="cannot rebuild a Sequential"):
        ck.build_model()
    other = nn.Sequential(nn.Linear(3, 2))
    other.load_state_dict(ck.model_state)
    assert torch.equal(other[0].weight, model[0].weight)


def test_mismatched_architecture_is_one_line_error(tmp_path):
    save_checkpoint(tmp_path / "m.pt", MLP(3, 2, hidden=(4,)))
    ck = load_checkpoint(tmp_path / "m.pt")
    ck.model_config = {**ck.model_config, "hidden": [5]}
    with pytest.raises(CheckpointError, match="do not fit MLP") as err:
        ck.build_model()
    assert _one_line(err)
