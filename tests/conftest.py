"""Shared pytest/hypothesis configuration, and the fixtures that start processes.

Hypothesis runs derandomized (same examples every run) with no deadline: torch
calls have variable latency and a flaky deadline is not a failing property.

Starting Ray, or worker processes that import torch, costs seconds of CPU each time,
so the suite does it once: ``ray_instance`` (one local Ray instance for the session)
and ``small_parallel_run`` (the small tiny preset run by two local worker processes,
which both the pipeline's serial-vs-parallel test and the Ray backend's
same-numbers-as-local tests compare against). ``tiny_fmnist_run`` is the tiny
Fashion-MNIST run that test_image_kinds.py checks and test_cifar10.py compares with.
"""

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    derandomize=True,
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "20")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")

# The suite's tensors are tiny, so a second intra-op thread costs CPU (spinning, hand-offs)
# without saving time; CI exports OMP_NUM_THREADS=2 for everything it runs. The test
# process uses one thread (worker processes set their own, backends/workers.py).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def cuda_device():
    """The CUDA device; tests using it are skipped when none exists."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch.device("cuda")


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance (num_cpus=2) for the whole session; skipped without Ray.

    ``RayBackend`` joins a Ray instance that is already running (and leaves it running),
    so every Ray test, and ``run.main(... --backend ray)`` called in-process, uses this one.
    """
    ray = pytest.importorskip("ray")
    # Workers import the test fakes by reference, so they need tests/ on their path.
    path = os.pathsep.join([str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def small_parallel_run(tmp_path_factory):
    """``experiments_fakes.SMALL`` run with ``jobs=2``: two local worker processes with one torch
    thread each (as each Ray task has), even on a one-core machine. Returns (out dir, results)."""
    from experiments_fakes import SMALL
    from manifold_lab.experiments.backends import workers as local_workers
    from manifold_lab.experiments.pipeline import run_experiment

    out = tmp_path_factory.mktemp("small_parallel")
    mp = pytest.MonkeyPatch()
    mp.setattr(local_workers, "usable_cpus", lambda: 2)
    try:
        results = run_experiment(SMALL, out, jobs=2, progress=False, figures=False)
    finally:
        mp.undo()
    return out, results


@pytest.fixture(scope="session")
def fmnist_idx_dir(tmp_path_factory):
    """Fashion-MNIST IDX files written here: 64 training and 24 test images."""
    from test_datasets_readers import write_idx_set

    folder = tmp_path_factory.mktemp("fmnist_idx")
    write_idx_set(folder, n_train=64, n_test=24)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_fmnist_run(tmp_path_factory, fmnist_idx_dir):
    """``test_image_kinds.tiny("fmnist")`` run once, with figures: (preset, out, results).
    Tests that change the directory work on a copy."""
    from test_image_kinds import tiny

    from manifold_lab.experiments import run_experiment

    preset = tiny("fmnist", fmnist_idx_dir)
    out = tmp_path_factory.mktemp("tiny_fmnist") / "run"
    return preset, out, run_experiment(preset, out, jobs=1, progress=False, figures=True)
