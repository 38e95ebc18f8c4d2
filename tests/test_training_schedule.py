"""Trainer options of the paper's CIFAR schedule: crop + flip against a brute-force search
over every crop, the step schedule against torch's MultiStepLR, seeding and resume."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from manifold_lab.experiments import TrainSpec
from manifold_lab.models import SmallCNN
from manifold_lab.training import make_objective, train
from manifold_lab.training.augment import AUGMENTATIONS, crop_flip, get_augmentation, shift
from manifold_lab.training.trainer import step_lr


def _images(n=6, c=3, h=8, w=8, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) + 0.1  # no zero pixels


@pytest.mark.parametrize("padding", [0, 1, 4])
def test_crop_flip_is_one_crop_of_the_padded_image_per_example(padding):
    x = _images()
    out = crop_flip(x, torch.Generator().manual_seed(3), padding=padding)
    assert out.shape == x.shape
    padded = F.pad(x, (padding,) * 4)
    side = 2 * padding + 1
    seen_flip = set()
    for i in range(x.shape[0]):
        matches = [(a, b, f) for a in range(side) for b in range(side) for f in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(-1) if f else c)(padded[i, :, a:a + 8, b:b + 8]))]
        assert matches, f"image {i} is no crop/flip of its padded input"
        seen_flip.update(f for *_, f in matches)
    assert seen_flip == {False, True}  # both outcomes occur among 6 images (seeded)


def test_crop_flip_is_seeded_and_varies():
    x = _images(n=32)
    a = crop_flip(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, crop_flip(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, crop_flip(x, torch.Generator().manual_seed(2)))
    # About half the images flipped, offsets spread: not the identity for most.
    assert (a != x).flatten(1).any(1).float().mean() > 0.5


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_shift_is_one_translation_with_zero_fill_per_example(padding):
    x = _images(n=16, c=2)
    out = shift(x, torch.Generator().manual_seed(5), padding=padding)
    assert out.shape == x.shape
    seen = set()
    for i in range(x.shape[0]):
        # out[i][:, r, c] == x[i][:, r + dr, c + dc] where that pixel exists, else 0.
        matches = []
        for dr in range(-padding, padding + 1):
            for dc in range(-padding, padding + 1):
                want = torch.zeros_like(x[i])
                rows, cols = slice(max(0, -dr), 8 - max(0, dr)), slice(max(0, -dc), 8 - max(0, dc))
                src_rows, src_cols = slice(max(0, dr), 8 + min(0, dr)), slice(max(0, dc), 8 + min(0, dc))
                want[:, rows, cols] = x[i][:, src_rows, src_cols]
                if torch.equal(out[i], want):
                    matches.append((dr, dc))
        assert len(matches) == 1, f"image {i} is no translation by <= {padding} px of its input"
        seen.add(matches[0])
    assert seen == {(0, 0)} if padding == 0 else len(seen) > 2  # offsets vary between images
    assert torch.equal(shift(x, torch.Generator().manual_seed(5), padding=padding), out)  # seeded


def test_bad_augmentation_inputs():
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        get_augmentation("rotate")
    with pytest.raises(ValueError, match=r"\[n, c, h, w\]"):
        crop_flip(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"shift needs images \[n, c, h, w\]"):
        shift(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="unknown augmentation"):
        TrainSpec(n_train=1, epochs=1, lr=1.0, batch_size=1, augment="rotate")
    with pytest.raises(ValueError, match="fractions"):
        TrainSpec(n_train=1, epochs=1, lr=1.0, batch_size=1, lr_milestones=(0.5, 1.5))
    assert set(AUGMENTATIONS) == {"crop_flip", "shift"}


def test_step_lr_matches_torch_multisteplr():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.025)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[150, 175], gamma=0.1)
    for epoch in range(200):
        assert step_lr(0.025, epoch, (150, 175), 0.1) == pytest.approx(sched.get_last_lr()[0], rel=1e-12)
        opt.step()
        sched.step()
    spec = TrainSpec(n_train=1, epochs=200, lr=0.025, batch_size=1, lr_milestones=(0.75, 0.875))
    assert spec.milestone_epochs() == (150, 175)
    assert dataclasses.replace(spec, epochs=2).milestone_epochs() == (2,)  # both round to 2, merged


def _fit(tmp_path=None, epochs=4, resume=False, **kwargs):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 28, 28, generator=gen), torch.randint(0, 10, (40,), generator=gen)
    model = SmallCNN(1, 10, image_size=28, seed=0)
    path = None if tmp_path is None else tmp_path / "ck.pt"
    return train(model, make_objective("none", 0.0), (x, y), epochs=epochs, lr=0.05, optimizer="sgd",
                 batch_size=16, seed=1, progress=False, checkpoint_path=path, resume=resume, **kwargs)


def _state(result):
    return [p.detach().clone() for p in result.model.state_dict().values()]


def test_schedule_and_augmentation_reach_the_training_and_resume_exactly(tmp_path):
    opts = dict(lr_milestones=(2, 3), lr_gamma=0.1, augment="crop_flip", weight_decay=5e-4)
    full = _fit(**opts)
    plain = _fit(weight_decay=5e-4)
    no_aug = _fit(lr_milestones=(2, 3), weight_decay=5e-4)
    for other in (plain, no_aug):
        assert any(not torch.equal(a, b) for a, b in zip(_state(full), _state(other)))
    assert all(torch.equal(a, b) for a, b in zip(_state(full), _state(_fit(**opts))))  # seeded
    # Interrupted after 3 epochs (inside the decayed part), then resumed to 4: the same weights.
    _fit(tmp_path, epochs=3, **opts)
    resumed = _fit(tmp_path, epochs=4, resume=True, **opts)
    assert resumed.resumed_from == 3
    assert all(torch.equal(a, b) for a, b in zip(_state(full), _state(resumed)))


def test_default_options_leave_training_unchanged():
    a, b = _fit(), _fit(lr_milestones=(), augment=None, weight_decay=0.0)
    assert all(torch.equal(p, q) for p, q in zip(_state(a), _state(b)))
