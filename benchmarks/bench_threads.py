"""Threads per process on a small CPU machine: one 2-thread process or two 1-thread ones?

The image presets run many small jobs (SmallCNN models, the autoencoder and denoiser
fits). This measures, in one run, the same work done two ways on ``--cpus`` cores:

- **sequential**: the jobs one after another in one process with ``--cpus`` torch threads;
- **side by side**: ``--cpus`` worker processes with one thread each, each doing one job
  (what ``--jobs N`` and the parallel fits of ``kinds._fitted_images`` do);

and prints wall seconds, CPU seconds and their ratio. The jobs: a SmallCNN (GELU) trained
for one epoch on random 28x28 images with cross-entropy, and with PGD-L2 (3 steps), and
one epoch of the denoiser fit. Timings depend on the machine's load: run it on an idle
machine (``uptime`` is printed) and compare the ratios, not the seconds.

    python benchmarks/bench_threads.py --cpus 2 --images 2000
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from manifold_lab.experiments.backends.workers import run_in_workers


def _job(kind: str, images: int, seed: int) -> tuple[float, float]:
    """One job in this process: ``(wall s, cpu s)``."""
    from manifold_lab.learned import fit_denoiser
    from manifold_lab.models import SmallCNN
    from manifold_lab.training import make_objective, train

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(images, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (images,), generator=g)
    t, c = time.perf_counter(), time.process_time()
    if kind == "denoiser":
        fit_denoiser(x, sigma_min=0.02, sigma_max=1.0, epochs=1, width=16, seed=seed, progress=False)
    else:
        model = SmallCNN(1, 10, 28, activation="gelu", seed=seed)
        objective = make_objective("pgd_l2", 1.0, steps=3) if kind == "pgd" else make_objective("none", 0.0)
        train(model, objective, data=(x, y), epochs=1, lr=2e-3, batch_size=64, seed=seed, progress=False)
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=2, help="cores to use (default 2)")
    parser.add_argument("--images", type=int, default=2000, help="images per job (default 2000)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for kind in ("ce", "pgd", "denoiser"):
        torch.set_num_threads(args.cpus)
        t0 = time.perf_counter()
        seq = [_job(kind, args.images, seed) for seed in range(args.cpus)]
        seq_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        side = run_in_workers([(_job, (kind, args.images, seed)) for seed in range(args.cpus)], threads=1)
        side_wall = time.perf_counter() - t0
        seq_cpu, side_cpu = sum(c for _, c in seq), sum(c for _, c in side)
        print(f"{kind:9s} {args.cpus} jobs: sequential ({args.cpus} threads) {seq_wall:6.1f} s wall, "
              f"{seq_cpu:6.1f} CPU-s | side by side (1 thread each) {side_wall:6.1f} s wall "
              f"(incl. worker start), {side_cpu:6.1f} CPU-s | wall ratio sequential/side "
              f"{seq_wall / side_wall:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
