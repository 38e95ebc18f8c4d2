"""The allocator tuning of training processes (``manifold_lab._allocator``).

Checked by what it is for: the page faults of training steps (counted by the kernel,
not timed), in a process with glibc's defaults against a worker process of the local
backend, and the benchmark's claim that the trained weights do not change.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import ctypes.util
import multiprocessing
import resource
import sys
from pathlib import Path

import pytest
import torch

from manifold_lab._allocator import keep_freed_memory
from manifold_lab.experiments.backends.workers import run_in_workers


def _glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "gnu_get_libc_version")
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _glibc(), reason="the tuning applies to glibc's malloc only")

#: Training steps counted after one warm-up step.
_STEPS = 4


def pgd_step_faults() -> tuple[int, list]:
    """Minor page faults of ``_STEPS`` PGD-L2 training steps of the mnist preset's
    ``SmallCNN`` on one thread, after a warm-up step, and the weights they leave
    (module-level: runs in workers)."""
    import torch

    from manifold_lab.models import SmallCNN
    from manifold_lab.training import make_objective

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    net = SmallCNN(activation="gelu", channels=(32, 64), seed=0)
    objective = make_objective("pgd_l2", 1.0, steps=3)
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def step():
        opt.zero_grad()
        loss, _ = objective(net, x, y, generator=gen)
        loss.backward()
        opt.step()

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(_STEPS):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return faults, [p.detach().clone() for p in net.parameters()]


def test_applies_on_glibc():
    assert keep_freed_memory() is True


def test_worker_processes_stop_the_page_fault_round_trip_and_train_the_same_weights():
    # A plain spawned process has glibc's defaults: each step faults its activations
    # in again (tens of thousands of 4 KiB pages); a worker of the local backend
    # reuses the memory of the warm-up step. The arithmetic is the same.
    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        plain = pool.submit(pgd_step_faults)  # runs while the worker below does
        ((tuned, tuned_weights),) = run_in_workers([(pgd_step_faults, ())], threads=1)
        default, default_weights = plain.result()
    assert default > 5000 * _STEPS, default
    assert tuned * 10 < default, (tuned, default)
    assert all(torch.equal(a, b) for a, b in zip(tuned_weights, default_weights))


@pytest.mark.slow
def test_benchmark_weights_do_not_change():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import bench_allocator
    finally:
        sys.path.pop(0)
    row = bench_allocator.bench("pgd_l2", images=128, repeats=1)
    assert row["same"] and row["tuned"]["applied"] and not row["default"]["applied"]
