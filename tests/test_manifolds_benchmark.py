"""The tangent-Jacobian benchmark's comparison, at tiny size: correctness only, no timing."""

import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_tangent_jacobian.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_tangent_jacobian", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # the benchmark script (65 s / 42 s at load ~10); the fast path itself: test_manifolds_immersed
def test_benchmark_paths_agree_at_tiny_size():
    bench = _load()
    r = bench.compare(batch=2, naive_images=1, latent_dim=3, width=4, repeats=1)
    assert r["d"] == 784 and r["naive_images"] == 1
    assert r["max_subspace_error"] < bench.MAX_SUBSPACE_ERROR


@pytest.mark.slow  # the benchmark script (65 s / 42 s at load ~10); the fast path itself: test_manifolds_immersed
def test_naive_jacobian_is_the_decoder_jacobian():
    # The reference path itself, against torch.autograd.functional.jacobian in float64.
    bench = _load()
    decoder = bench.build_decoder(2, width=4, seed=1).double()
    z = torch.randn(2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = torch.autograd.functional.jacobian(lambda zz: decoder(zz).sum(0), z).permute(1, 0, 2)
    torch.testing.assert_close(bench.naive_jacobian(decoder, z), ref)
