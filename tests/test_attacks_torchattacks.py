"""Our PGD-L∞ and PGD-L2 against torchattacks 3.5.1 (fixture written by its code, no random start).

``tests/fixtures/upstream/make_fixtures.py`` ran torchattacks' ``PGD`` / ``PGDL2`` with
``random_start=False``, 10 steps and step ``2.5 eps / 10`` on a ``SmallCNN(3, 10, 32)``
whose weights both sides fill from ``fill.key_tensor`` and on 8 stored images; here our
``pgd_linf`` / ``pgd_l2`` run on the same model and images with the same budget and the
adversarial examples are compared entrywise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from manifold_lab.models import SmallCNN
from manifold_lab.training import pgd_l2, pgd_linf

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
sys.path.insert(0, str(FIXTURES))
from fill import fill_state  # noqa: E402

#: Entrywise agreement: float32 rounding of x + δ kept by torchattacks vs δ kept by us (a few ulps of 1).
ATOL = 1e-6
STEPS, STEP_FACTOR = 10, 2.5
SETTINGS = (("linf", 8 / 255), ("linf", 16 / 255), ("l2", 0.5), ("l2", 1.0))


@pytest.fixture(scope="module")
def case():
    t = torch.load(FIXTURES / "attack_torchattacks.pt", weights_only=True)
    net = SmallCNN(3, 10, 32)
    net.load_state_dict(fill_state(net.state_dict()))
    x = (t["attack/x_uint8"].float() / 255).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    return net.eval(), x, t["attack/y"], t


@pytest.mark.parametrize("norm, eps", SETTINGS)
def test_adversarial_examples_equal_torchattacks(case, norm, eps):
    net, x, y, t = case
    attack = pgd_linf if norm == "linf" else pgd_l2
    ours = attack(net, x, y, eps, steps=STEPS, bounds=(0.0, 1.0), random_start=False)
    theirs = t[f"attack/{norm}/{eps:.6f}"]
    assert float((ours - theirs).abs().max()) <= ATOL
    moved = (theirs - x).flatten(1)
    assert float(moved.abs().max()) > 0.5 * eps if norm == "linf" else float(moved.norm(dim=1).max()) > 0.5 * eps


def test_linf_stays_in_the_box_and_bounds():
    g = torch.Generator().manual_seed(0)
    net = SmallCNN(3, 10, 32, seed=1)
    x, y = torch.rand(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3])
    eps = torch.tensor([0.0, 0.01, 0.03, 0.1])
    adv = pgd_linf(net, x, y, eps, steps=5, bounds=(0.0, 1.0), generator=g)
    assert bool(((adv - x).abs().flatten(1).amax(1) <= eps + 1e-7).all())
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert torch.equal(adv[0], x[0])


def test_recorded_parity_on_the_pgd_trained_model():
    """The record of ``make_fixtures.py --pgd-model`` (500 images, an in-project PGD-trained model):
    the same robust accuracy at every budget and examples equal to float32 rounding."""
    import json

    record = json.loads((FIXTURES / "attack_parity.json").read_text())
    assert {(r["norm"], round(r["eps"], 6)) for r in record["settings"]} == {(n, round(e, 6)) for n, e in SETTINGS}
    for r in record["settings"]:
        assert r["accuracy_ours"] == r["accuracy_torchattacks"] < record["clean_accuracy"]
        assert r["max_abs_diff"] <= 1e-5
