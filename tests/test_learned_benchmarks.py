"""The learned-ground-truth benchmark and measurement scripts at tiny size: correctness only, no timing."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # the benchmark script (54 s at load ~10); AutoencoderManifold bases: test_learned_autoencoder
def test_tangent_benchmark_paths_agree():
    bench = _load("bench_learned_tangent")
    r = bench.compare(images=3, naive_images=1, latent_dim=2, width=4, repeats=1)
    assert r["max_subspace_error"] < bench.MAX_SUBSPACE_ERROR and r["images"] == 3


def test_tangent_measurement_runs():
    rows = _load("measure_learned_tangents").measure(n_train=64, n_test=8, latent_dims=(4,), epochs=(1, 2),
                                                     batch_size=32, width=4)
    assert [r["epochs"] for r in rows] == [1, 2]
    assert all(0 <= r["overlap_mean"] <= 1 + 1e-6 for r in rows)


def test_score_measurement_runs():
    r = _load("measure_learned_scores").measure(n_train=64, n_test=8, epochs=1, width=4, n_sigmas=2)
    assert [round(row["sigma"], 6) for row in r["rows"]] == [0.02, 1.0]
    assert all(-1 <= row["noisy_mean"] <= 1 for row in r["rows"])
