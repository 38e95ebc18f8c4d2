"""Benchmark: batched on/off-manifold robustness against the naive patterns.

Two comparisons, each measured side by side in one run (ratios, not absolute times):

1. **MLP on R^64** — ``metrics.manifold_robustness`` against a Python loop over
   points × σ × draws with one batch-1 forward pass per perturbed input (fresh
   draw per σ, as in the paper's released code). Target: ≥ 20× faster, and the
   two estimates agree within Monte-Carlo error (z-scores of their difference
   from the per-draw variances, points held fixed). Run for two widths: the
   speed-up is bounded by (batch-1 call cost) / (batched cost per example), so
   it is largest for cheap models; the batched run's own floor (bare forward
   passes of the same batches) is printed too.
2. **SmallCNN on 28×28 inputs** (16 points × 32 draws × 4 σ) and **3. the CIFAR
   ResNet-18** (4 points × 8 draws × 4 σ) — total time of ``manifold_robustness``
   against the *physical floor*: the bare model forward passes over the same
   number of inputs on a pre-allocated input, at the fastest fixed batch size
   (and, for reference, with exactly the batch sizes the sweep used). Both the
   default (call size tuned from measured throughput) and the fixed plan of
   ``DEFAULT_CHUNK_ELEMENTS // D`` rows per call ("before") are timed in the
   same run. Target: ≤ 1.3× the best floor.

Run: ``python benchmarks/bench_robustness.py`` (``--quick`` for a smoke run).
Timings are the minimum over ``--repeats`` runs. On a machine shared with other
jobs pass ``--threads 1``: oversubscribed OpenMP threads make batched timings
erratic (both sides of a ratio are then still measured alike).
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

from manifold_lab.metrics import manifold_robustness, scalar_fn
from manifold_lab.metrics._chunking import default_chunk_size
from manifold_lab.metrics.robustness import robustness_values
from manifold_lab.models import ResNet18, SmallCNN

#: Issue 4's targets: batched vs naive speed-up, and total time vs the forward-pass floor.
SPEEDUP_TARGET = 20.0
FLOOR_RATIO_TARGET = 1.3
#: Largest accepted |z| between the two estimates (8 comparisons per width; a
#: two-sided 4σ excursion has probability 6e-5 each).
AGREEMENT_Z = 4.0

__all__ = ["make_mlp", "naive_robustness", "bench_mlp", "bench_model", "bench_cnn", "bench_resnet"]


def make_mlp(d: int = 64, width: int = 64, n_classes: int = 10, seed: int = 0) -> nn.Module:
    """Softplus MLP ``d → width → width → n_classes`` (float32, eval mode)."""
    torch.manual_seed(seed)  # benchmark script, not library code: default init
    return nn.Sequential(
        nn.Linear(d, width), nn.Softplus(), nn.Linear(width, width), nn.Softplus(), nn.Linear(width, n_classes)
    ).eval()


def random_bases(n: int, D: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """Orthonormal ``[n, D, k]`` bases (QR of Gaussian matrices)."""
    return torch.linalg.qr(torch.randn(n, D, k, generator=generator)).Q


def naive_robustness(model, x, y, basis, sigmas, n_samples, generator):
    """The naive pattern: loops over points × σ × draws, one batch-1 forward each.

    Returns per-draw squared changes ``[2, n, S, M]`` (tangent, normal).
    """
    n, S = x.shape[0], len(sigmas)
    out = torch.empty(2, n, S, n_samples)
    flat = x.reshape(n, -1)
    with torch.no_grad():
        for i in range(n):
            f0 = torch.log_softmax(model(x[i : i + 1]), 1)[0, y[i]]
            for s, sigma in enumerate(sigmas):
                for m in range(n_samples):
                    u = torch.randn(flat.shape[1], generator=generator)
                    ut = basis[i] @ (basis[i].T @ u)
                    for t, v in enumerate((ut, u - ut)):
                        xp = (flat[i] + sigma * v).view(1, *x.shape[1:])
                        fp = torch.log_softmax(model(xp), 1)[0, y[i]]
                        out[t, i, s, m] = (fp - f0) ** 2
    return out


def _timed(fn, repeats):
    best, result = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench_mlp(n_points=32, d=64, k=8, n_samples=32, sigmas=(0.03, 0.1, 0.3, 1.0), width=64, repeats=3, seed=0) -> dict:
    """Batched ``manifold_robustness`` vs the naive loop on an MLP (see module docstring)."""
    g = torch.Generator().manual_seed(seed)
    model = make_mlp(d, width, seed=seed)
    x = torch.randn(n_points, d, generator=g)
    y = torch.randint(0, 10, (n_points,), generator=g)
    B = random_bases(n_points, d, k, g)
    f = scalar_fn(model, y, target="log_softmax")
    run = lambda fn: manifold_robustness(fn, x, B, sigmas, n_samples=n_samples, generator=torch.Generator().manual_seed(1))
    rec = _Recorder(f)
    run(rec)  # warm-up, records the batch sizes
    t_fast, t_floor = math.inf, math.inf
    for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
        t_floor = min(t_floor, _floor_time(model, rec.sizes, x.shape[1:], 1))
        t, fast = _timed(lambda: run(f), 1)
        t_fast = min(t_fast, t)
    t_naive, naive = _timed(
        lambda: naive_robustness(model, x, y, B, sigmas, n_samples, torch.Generator().manual_seed(2)),
        max(1, repeats // 2),
    )
    # Agreement: same points, independent draws; the difference's Monte-Carlo
    # variance is Σ_i (Var_i^fast + Var_i^naive)/(M n²) from the per-draw values.
    _, vals, _ = robustness_values(
        f, x, B, sigmas, n_samples=n_samples, generator=torch.Generator().manual_seed(1),
        chunk_size=None, antithetic=False,
    )  # [2, n, M, S], the same numbers as the timed call
    var_fast = vals.var(2).sum(1) / (n_samples * n_points**2)  # [2, S]
    var_naive = naive.var(3).sum(1) / (n_samples * n_points**2)
    naive_mean = naive.mean((1, 3))  # [2, S]
    fast_mean = torch.stack([fast.on, fast.off])
    z = (fast_mean - naive_mean) / (var_fast + var_naive).sqrt()
    return {
        "width": width,
        "evals": 2 * n_points * len(sigmas) * n_samples,
        "t_fast_s": t_fast,
        "t_floor_s": t_floor,
        "t_naive_s": t_naive,
        "speedup": t_naive / t_fast,
        "sigmas": list(sigmas),
        "fast_on": fast.on.tolist(),
        "naive_on": naive_mean[0].tolist(),
        "fast_off": fast.off.tolist(),
        "naive_off": naive_mean[1].tolist(),
        "max_abs_z": float(z.abs().max()),
    }


def _floor_time(model, sizes, shape, repeats):
    """Min time of bare forward passes with the given batch sizes on a pre-allocated input."""
    inputs = torch.rand(max(sizes), *shape, generator=torch.Generator().manual_seed(3))

    def floor():
        with torch.no_grad():
            for m in sizes:
                model(inputs[:m])

    return _timed(floor, repeats)[0]


class _Recorder:
    """Wraps a scalar function and records the batch size of every call."""

    takes_index = True

    def __init__(self, f):
        self.f, self.sizes = f, []

    def __call__(self, x, index=None):
        self.sizes.append(x.shape[0])
        return self.f(x, index=index)


#: Batch sizes tried for the best-throughput floor (bare forward passes, same count).
FLOOR_BATCHES = (16, 32, 64, 128, 256, 512, 1024, 2048)


def _best_floor(model, count, shape, repeats):
    """Min time of ``count`` bare forward passes at the fastest fixed batch size in ``FLOOR_BATCHES``."""
    best = (math.inf, None)
    for b in FLOOR_BATCHES:
        if b > count:
            break
        sizes = [b] * (count // b) + ([count % b] if count % b else [])
        best = min(best, (_floor_time(model, sizes, shape, repeats), b))
    return best


def bench_model(model, shape, n_points=16, k=16, n_samples=32, sigmas=(0.03, 0.1, 0.3, 1.0), repeats=3, seed=0,
                chunk_size=None) -> dict:
    """``manifold_robustness`` vs the bare forward passes it needs, for a tuned and a fixed-size plan.

    ``chunk_size=None`` is the library default (tuned from throughput); the
    fixed plan of issue 4 (``DEFAULT_CHUNK_ELEMENTS // D`` rows per call) is
    timed alongside as "before". Two floors: the same batch sizes the sweep
    used, and the best fixed batch size for the same number of evaluations.
    """
    g = torch.Generator().manual_seed(seed)
    model = model.eval()
    x = torch.rand(n_points, *shape, generator=g)
    y = torch.randint(0, 10, (n_points,), generator=g)
    D = math.prod(shape)
    B = random_bases(n_points, D, k, g)
    f = scalar_fn(model, y, target="log_softmax")
    fixed = default_chunk_size(D) if chunk_size is None else chunk_size

    def total(chunk):
        return manifold_robustness(f, x, B, sigmas, n_samples=n_samples,
                                   generator=torch.Generator().manual_seed(1), chunk_size=chunk)

    rec = _Recorder(f)
    manifold_robustness(rec, x, B, sigmas, n_samples=n_samples, generator=torch.Generator().manual_seed(1),
                        chunk_size=chunk_size)  # warm-up, records the batch sizes
    sizes = rec.sizes
    # Interleave everything so that load from other processes hits all alike.
    t_tuned, t_fixed, t_same = math.inf, math.inf, math.inf
    for _ in range(repeats):
        t_same = min(t_same, _floor_time(model, sizes, x.shape[1:], 1))
        t_tuned = min(t_tuned, _timed(lambda: total(chunk_size), 1)[0])
        t_fixed = min(t_fixed, _timed(lambda: total(fixed), 1)[0])
    t_best, best_batch = _best_floor(model, sum(sizes), x.shape[1:], repeats)
    t_best = min(t_best, t_same)
    return {
        "evals": sum(sizes),
        "calls": len(sizes),
        "batch_sizes": sorted(set(sizes)),
        "t_total_s": t_tuned,
        "t_fixed_s": t_fixed,
        "t_floor_s": t_same,
        "t_best_floor_s": t_best,
        "best_batch": best_batch,
        "overhead_ratio": t_tuned / t_same,
        "ratio_vs_best": t_tuned / t_best,
        "fixed_ratio_vs_best": t_fixed / t_best,
    }


def bench_cnn(n_points=16, k=16, n_samples=32, sigmas=(0.03, 0.1, 0.3, 1.0), repeats=3, seed=0, chunk_size=None) -> dict:
    """:func:`bench_model` on the library's ``SmallCNN`` (28×28, one channel)."""
    return bench_model(SmallCNN(1, 10, 28, seed=seed), (1, 28, 28), n_points, k, n_samples, sigmas, repeats, seed,
                       chunk_size)


def bench_resnet(n_points=4, k=16, n_samples=8, sigmas=(0.03, 0.1, 0.3, 1.0), repeats=3, seed=0, chunk_size=None,
                 width=64) -> dict:
    """:func:`bench_model` on the library's CIFAR ``ResNet18`` (32×32, three channels)."""
    return bench_model(ResNet18(3, 10, width=width, seed=seed), (3, 32, 32), n_points, k, n_samples, sigmas,
                       repeats, seed, chunk_size)


def _print_model(label, r):
    print(f"\n{label}: {r['evals']} forward evaluations in {r['calls']} calls (batch sizes {r['batch_sizes']})")
    print(f"    manifold_robustness (tuned) {r['t_total_s']:.3f} s | fixed plan (DEFAULT_CHUNK_ELEMENTS // D) "
          f"{r['t_fixed_s']:.3f} s")
    print(f"    bare forward passes: same batches {r['t_floor_s']:.3f} s, best fixed batch ({r['best_batch']}) "
          f"{r['t_best_floor_s']:.3f} s")
    print(f"    ratio vs best floor: tuned {r['ratio_vs_best']:.2f}, fixed {r['fixed_ratio_vs_best']:.2f}"
          f" | tuned vs same batches {r['overhead_ratio']:.2f} (target <= 1.3)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, numbers not meaningful)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        mlps = [bench_mlp(n_points=4, n_samples=4, width=w, repeats=1) for w in (64, 256)]
        cnn = bench_cnn(n_points=4, n_samples=4, repeats=1)
        resnet = bench_resnet(n_points=1, n_samples=2, repeats=1, width=8)
    else:
        mlps = [bench_mlp(width=w, repeats=args.repeats) for w in (64, 256)]
        cnn = bench_cnn(repeats=args.repeats)
        resnet = bench_resnet(repeats=args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for mlp in mlps:
        print(f"\n[1] MLP on R^64, softplus 2x{mlp['width']}: {mlp['evals']} perturbed evaluations")
        print(f"    manifold_robustness {mlp['t_fast_s']:.4f} s | naive batch-1 loop {mlp['t_naive_s']:.3f} s"
              f" | speedup {mlp['speedup']:.1f}x (target >= 20x)")
        print(f"    bare batched forward passes of the same batches: {mlp['t_floor_s']:.4f} s"
              f" (manifold_robustness / floor = {mlp['t_fast_s'] / mlp['t_floor_s']:.2f})")
        print("    sigma     R_T fast    R_T naive   R_N fast    R_N naive")
        for i, s in enumerate(mlp["sigmas"]):
            print(f"    {s:<8.3g}  {mlp['fast_on'][i]:.4e}  {mlp['naive_on'][i]:.4e}  "
                  f"{mlp['fast_off'][i]:.4e}  {mlp['naive_off'][i]:.4e}")
        print(f"    max |z| of fast - naive (Monte-Carlo standard errors): {mlp['max_abs_z']:.2f}")
    _print_model("[2] SmallCNN on 28x28 (16 points x 32 draws x 4 sigmas)", cnn)
    _print_model("[3] ResNet-18 (CIFAR) on 32x32 (4 points x 8 draws x 4 sigmas)", resnet)
    if args.quick:
        return
    ok = (
        all(m["speedup"] >= SPEEDUP_TARGET and m["max_abs_z"] <= AGREEMENT_Z for m in mlps)
        and all(r["ratio_vs_best"] <= FLOOR_RATIO_TARGET for r in (cnn, resnet))
    )
    print(f"\ntargets met: {'yes' if ok else 'NO'}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
