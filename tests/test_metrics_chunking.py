"""Call sizes of the perturbation sweep: tuned from throughput, never changing a single bit of the result."""

from __future__ import annotations

import math

import pytest
import torch

from manifold_lab.metrics import _chunking, manifold_robustness, scalar_fn
from manifold_lab.metrics._chunking import ALIGN_ROWS, ChunkPlan, default_chunk_size
from manifold_lab.metrics.directional import directional_robustness
from manifold_lab.models import MLP, SmallCNN


def _basis(n, D, k, seed, dtype=torch.float64):
    return torch.linalg.qr(torch.randn(n, D, k, generator=torch.Generator().manual_seed(seed), dtype=dtype)).Q


@pytest.mark.parametrize("case", ["smallcnn_float32", "mlp_float64"])
def test_tuned_and_fixed_plans_give_identical_estimates(case):
    if case == "smallcnn_float32":
        model, shape, dtype = SmallCNN(1, 10, 12, seed=1), (1, 12, 12), torch.float32
    else:
        model, shape, dtype = MLP(6, 3, seed=1).double(), (6,), torch.float64
    g = torch.Generator().manual_seed(0)
    n, D = 5, math.prod(shape)
    x = torch.rand(n, *shape, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (n,), generator=g)
    B = _basis(n, D, 3, 2, dtype)
    f = scalar_fn(model.eval(), y, target="log_softmax")
    sig = [0.01, 0.1, 0.3]  # S = 3: tuned calls of whole groups need 16 groups per 48 rows
    run = lambda chunk: manifold_robustness(f, x, B, sig, n_samples=40, chunk_size=chunk,
                                            generator=torch.Generator().manual_seed(7))
    ref = run(default_chunk_size(D))  # the fixed plan
    for chunk in (None, 48, 96, 10_000):
        r = run(chunk)
        assert torch.equal(r.on_per_point, ref.on_per_point) and torch.equal(r.off_per_point, ref.off_per_point)


def test_directional_robustness_uses_the_same_plans():
    model = MLP(6, 3, seed=2).double().eval()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    B = _basis(4, 6, 2, 4)
    run = lambda chunk: directional_robustness(model, x, B, [0.1, 1.0], n_directions=50, chunk_size=chunk,
                                               generator=torch.Generator().manual_seed(5))
    a, b = run(None), run(default_chunk_size(6))
    assert torch.equal(a.on_per_point, b.on_per_point) and torch.equal(a.off_per_point, b.off_per_point)


class _FakeClock:
    """``perf_counter`` that advances by ``cost(groups)`` for every timed call."""

    def __init__(self, cost):
        self.cost, self.now, self.pending = cost, 0.0, None

    def __call__(self):
        if self.pending is not None:
            self.now += self.cost(self.pending)
            self.pending = None
        return self.now


def _drive(plan, clock, total):
    """Walk ``total`` groups of the fixed plan through ``plan`` as the sweep does."""
    for c0 in range(0, total, plan.max_groups):
        c1, g1 = min(total, c0 + plan.max_groups), c0
        while g1 < c1:
            g = plan.next_groups(c1 - g1)
            clock.pending = g
            plan.done(g)
            g1 += g
    return plan.history


def test_tuner_settles_on_the_fastest_size(monkeypatch):
    # Per-group cost falls until 64 groups, then rises (cache spill): optimum 64.
    cost = lambda g: g * (1.0 + 8.0 / g + (0.0 if g <= 64 else 0.5 * math.log2(g / 64)))
    clock = _FakeClock(cost)
    monkeypatch.setattr(_chunking.time, "perf_counter", clock)
    plan = ChunkPlan(4, 4096, tuned=True, device=torch.device("cpu"))
    history = _drive(plan, clock, 5000)
    assert sum(history) == 5000
    # MIN_TUNED_ROWS = 32 rows first (8 groups of 4), doubling, each size timed TRIALS = 2 times.
    assert _chunking.MIN_TUNED_ROWS == 32
    assert history[:10] == [8, 8, 16, 16, 32, 32, 64, 64, 128, 128]
    # Then the fastest size; only the last call of each fixed-plan call (4096 + 904 groups) is a remainder.
    assert [g for g in history[10:] if g != 64] == [(4096 - 496) % 64, 904 % 64]
    assert not plan.tuning


def test_tuned_calls_split_the_fixed_plan_at_aligned_rows(monkeypatch):
    clock = _FakeClock(lambda g: float(g))  # no gain from larger calls: stays at the start size
    monkeypatch.setattr(_chunking.time, "perf_counter", clock)
    S, cap = 6, 100
    plan = ChunkPlan(S, cap, tuned=True, device=torch.device("cpu"))
    history = _drive(plan, clock, 250)
    starts, pos = [], 0
    for g in history:
        starts.append(pos)
        pos += g
    for s0 in starts:  # every call starts at a fixed-plan call start plus a multiple of ALIGN_ROWS rows
        assert ((s0 % cap) * S) % ALIGN_ROWS == 0
    assert max(history) <= cap


def test_a_slow_first_call_does_not_decide(monkeypatch):
    """A one-off setup cost on the very first call: the second trial of that size counts."""
    calls = []
    # Per group: 1.0 at the start size, 8 groups (the optimum), 1.2 above; the first call pays 100 extra.
    cost = lambda g: (calls.append(g), g * (1.0 if g <= 8 else 1.2) + (100.0 if len(calls) == 1 else 0.0))[1]
    clock = _FakeClock(cost)
    monkeypatch.setattr(_chunking.time, "perf_counter", clock)
    plan = ChunkPlan(4, 64, tuned=True, device=torch.device("cpu"))
    _drive(plan, clock, 1000)
    assert plan.groups == 8 and not plan.tuning  # one timing alone would have settled on 16


def test_fixed_plan_takes_whole_calls():
    plan = ChunkPlan(4, 50, tuned=False, device=torch.device("cpu"))
    assert _drive(plan, _FakeClock(float), 120) == [50, 50, 20]
