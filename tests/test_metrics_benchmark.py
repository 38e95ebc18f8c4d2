"""The robustness benchmark's functions run and agree at tiny sizes (no timing assertions)."""

import importlib.util
import math
from pathlib import Path

import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_robustness.py"
_spec = importlib.util.spec_from_file_location("bench_robustness", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_bench_mlp_small_agrees_with_naive_loop():
    r = bench.bench_mlp(n_points=4, n_samples=16, sigmas=(0.1, 1.0), width=16, repeats=1)
    assert r["evals"] == 2 * 4 * 2 * 16
    assert all(math.isfinite(r[k]) and r[k] > 0 for k in ("t_fast_s", "t_naive_s", "t_floor_s"))
    # Independent draws on the same points: the difference is Monte-Carlo noise,
    # |z| ≤ 5 (4 comparisons; a two-sided 5σ excursion has probability 6e-7 each).
    assert r["max_abs_z"] <= 5


def test_naive_loop_is_definition_1():
    # The naive reference itself: its first value is Definition 1 for the first draw.
    model = torch.nn.Linear(6, 2)
    x = torch.randn(2, 6)
    B = bench.random_bases(2, 6, 2, torch.Generator().manual_seed(0))
    out = bench.naive_robustness(model, x, torch.tensor([0, 1]), B, (0.5,), 3, torch.Generator().manual_seed(1))
    assert out.shape == (2, 2, 1, 3) and bool((out >= 0).all())
    g = torch.Generator().manual_seed(1)
    u = torch.randn(6, generator=g)  # first draw of point 0 (tangent then normal)
    ut = B[0] @ (B[0].T @ u)
    with torch.no_grad():
        f = lambda z: torch.log_softmax(model(z[None]), 1)[0, 0]
        expect = (f(x[0] + 0.5 * ut) - f(x[0])) ** 2
    torch.testing.assert_close(out[0, 0, 0, 0], expect)


def test_bench_cnn_small_counts_every_forward_evaluation():
    r = bench.bench_cnn(n_points=2, k=3, n_samples=2, sigmas=(0.1, 0.3), repeats=1, chunk_size=8)
    assert r["evals"] == 2 * 2 * 2 * 2 + 2  # perturbed + clean
    assert max(r["batch_sizes"]) <= 8
    assert math.isfinite(r["overhead_ratio"]) and r["overhead_ratio"] > 0
