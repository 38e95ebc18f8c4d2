"""The Ray backend on one local Ray instance (num_cpus=2) shared by the session
(``conftest.ray_instance``).

Each test runs a few tiny models: the same rows and files as the local backend,
a worker killed mid-sweep (retried, same numbers), failures reported by model id
after the others finish, Ctrl-C cancelling the outstanding tasks.
"""

import functools
import importlib.util
import json
import re
import shutil
import time
import types
from pathlib import Path

import pytest

from experiments_fakes import SMALL, dying_run_job, failing_run_job, sleeping_run_job
from process_helpers import pid_alive
from manifold_lab.experiments import sweep as sweep_module
from manifold_lab.experiments.pipeline import run_experiment
from manifold_lab.experiments.sweep import run_sweep

ray = pytest.importorskip("ray")
from manifold_lab.experiments.backends.ray import RayBackend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: SMALL: every kind of job (Bayes-optimal, unregularised, one regulariser).
N_SMALL = SMALL.n_models + 1

#: Wall-clock fields: the only ones allowed to differ between two runs.
TIMINGS = {"train_s", "eval_s", "train_cpu_s", "eval_cpu_s", "runtime_s", "runtime_total_s", "compute_s",
           "compute_cpu_s"}


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def local_run(small_parallel_run):
    """SMALL by two local worker processes with one torch thread each, as each Ray task has
    (``conftest.small_parallel_run``, shared with the pipeline's parallel test)."""
    return small_parallel_run


@pytest.fixture(scope="module")
def ray_run(ray_instance, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray")
    return out, run_experiment(SMALL, out, jobs=None, progress=False, figures=False,
                               backend=RayBackend())


def test_ray_writes_the_same_files_and_numbers_as_local(local_run, ray_run):
    (local_out, local), (ray_out, results) = local_run, ray_run
    assert _without_timings(results) == _without_timings(local)
    assert sorted(p.name for p in ray_out.iterdir()) == sorted(p.name for p in local_out.iterdir())
    for path in (local_out / "models").iterdir():
        assert _without_timings(json.loads((ray_out / "models" / path.name).read_text())) == \
            _without_timings(json.loads(path.read_text())), path.name


def _bench():
    path = ROOT / "benchmarks" / "bench_backends.py"
    spec = importlib.util.spec_from_file_location("bench_backends", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_backend_benchmark_compares_every_file(local_run, ray_run, tmp_path):
    differences = _bench().differences
    (local_out, _), (ray_out, _) = local_run, ray_run
    compared, differ = differences(local_out, ray_out)
    assert differ == [] and compared > 100 * N_SMALL
    # A change in the last digit of one number, anywhere, is found.
    shutil.copytree(ray_out, tmp_path / "ray")
    path = tmp_path / "ray" / "models" / "none-s0.json"
    stored = json.loads(path.read_text())
    stored["row"]["robustness_curve"]["off"][-1] *= 1 + 1e-12
    path.write_text(json.dumps(stored))
    assert differences(local_out, tmp_path / "ray")[1] == [
        "none-s0.json.row.robustness_curve.off[1]"]


def test_ray_resumes_a_local_run(ray_instance, local_run, tmp_path, monkeypatch):
    local_out, local = local_run
    shutil.copytree(local_out, tmp_path / "run")
    (tmp_path / "run" / "models" / "none-s0.json").unlink()
    results = run_experiment(SMALL, tmp_path / "run", jobs=None, progress=False, figures=False,
                             backend=RayBackend())
    assert results["resumed_models"] == N_SMALL - 1
    assert _without_timings(results["models"]) == _without_timings(local["models"])


def _stored_row(out: Path, job_id: str) -> dict:
    return _without_timings(json.loads((out / "models" / f"{job_id}.json").read_text())["row"])


def test_a_killed_worker_is_retried_and_the_sweep_completes(ray_instance, local_run, tmp_path,
                                                             monkeypatch):
    local_out, _ = local_run
    victim = "gradient_norm-01-s0"
    monkeypatch.setattr(sweep_module, "run_job", functools.partial(
        dying_run_job, marker_dir=str(tmp_path), victim=victim))
    rows = run_sweep(SMALL, tmp_path / "run", backend=RayBackend(), jobs=None)
    assert (tmp_path / f"killed-{victim}").exists()  # the worker really died once
    assert sorted(rows) == sorted(p.stem for p in (local_out / "models").glob("*.json"))
    for job_id, row in rows.items():
        assert _without_timings(row) == _stored_row(local_out, job_id), job_id


def test_failures_are_retried_then_reported_by_model_after_the_rest(ray_instance, tmp_path,
                                                                     monkeypatch):
    flaky, broken = "gradient_norm-00-s0", "none-s0"
    monkeypatch.setattr(sweep_module, "run_job", functools.partial(
        failing_run_job, marker_dir=str(tmp_path), flaky=flaky, broken=broken))
    with pytest.raises(ValueError) as info:
        run_experiment(SMALL, tmp_path / "run", jobs=None, progress=False, figures=False,
                       backend=RayBackend())
    message = str(info.value)
    assert "\n" not in message and message.startswith("1 model(s) failed")
    assert f"model {broken}: loss is nan" in message and flaky not in message
    assert (tmp_path / f"failed-{flaky}").exists()  # it failed once and was retried
    written = {p.stem for p in (tmp_path / "run" / "models").glob("*.json")}
    assert written == {"bayes_optimal", "gradient_norm-00-s0", "gradient_norm-01-s0"}
    assert not (tmp_path / "run" / "results.json").exists()
    invocations = json.loads((tmp_path / "run" / "run.json").read_text())["invocations_s"]
    assert len(invocations) == 1 and invocations[0] > 0  # the failed invocation is counted


def test_interrupt_cancels_outstanding_tasks_and_keeps_finished_models(ray_instance, tmp_path,
                                                                        monkeypatch):
    # The costliest job runs first and for real; the one beside it never ends.
    first = "gradient_norm-00-s0"
    monkeypatch.setattr(sweep_module, "run_job", functools.partial(
        sleeping_run_job, marker_dir=str(tmp_path), except_for=(first,)))

    def sleepers():
        return [int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()]

    def interrupt(job, row, resumed):
        deadline = time.monotonic() + 60
        while not sleepers() and time.monotonic() < deadline:  # a task is running
            time.sleep(0.1)
        raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(SMALL, tmp_path / "run", backend=RayBackend(), jobs=2, on_done=interrupt)
    assert time.perf_counter() - t0 < 120  # not the sleeping task's 300 s
    assert [p.stem for p in (tmp_path / "run" / "models").glob("*.json")] == [first]
    pids = sleepers()
    assert pids, "the second task never started"
    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(pid_alive(pid) for pid in pids), "a cancelled task's worker is still running"


class _FakeRay:
    """Only what ``RayBackend._options`` reads: the cluster's resources."""

    def __init__(self, **resources):
        self._resources = resources

    def cluster_resources(self):
        return self._resources


def test_tasks_request_a_gpu_or_a_fraction_of_one_with_cuda():
    cluster = _FakeRay(CPU=8.0, GPU=2.0)
    assert RayBackend()._options(cluster, "cpu")["num_gpus"] == 0
    assert RayBackend()._options(cluster, "cuda")["num_gpus"] == 1.0
    options = RayBackend(gpus_per_model=0.25)._options(cluster, "cuda")
    assert options["num_gpus"] == 0.25 and options["num_cpus"] == 1
    assert options["max_retries"] == 3


@pytest.mark.parametrize("cluster, device, fragment", [
    (_FakeRay(CPU=8.0), "cuda", "has 0 GPU(s)"),
    (_FakeRay(CPU=8.0, GPU=1.0), "cuda:1", "use --device cuda"),
    (_FakeRay(CPU=0.0), "cpu", "has 0 CPU(s)"),
])
def test_a_cluster_without_the_resources_is_a_one_line_error(cluster, device, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)) as info:
        RayBackend()._options(cluster, device)
    assert "\n" not in str(info.value)


class _NeverDoneRay(_FakeRay):
    """Tasks that never finish: ``wait`` times out every time (as a Ray wait whose
    SIGTERM exception was swallowed keeps doing)."""

    class exceptions:
        RayError = RuntimeError

    def __init__(self):
        super().__init__(CPU=2.0)
        self.submitted, self.cancelled, self.waits = [], [], 0

    def remote(self, fn):
        ray = self

        class _Task:
            def options(self, **options):
                return self

            def remote(self, *args):
                ray.submitted.append(object())
                return ray.submitted[-1]
        return _Task()

    def wait(self, refs, num_returns, timeout):
        self.waits += 1
        if self.waits > 10:   # fail instead of hanging when the stop is not honoured
            raise AssertionError("still waiting after 10 polls: the stop request was ignored")
        return [], refs

    def cancel(self, ref, force):
        self.cancelled.append(ref)


def test_a_requested_stop_ends_the_wait_and_cancels_every_task():
    fake, polls = _NeverDoneRay(), []

    def stop_requested():
        polls.append(1)
        return len(polls) >= 3   # e.g. a SIGTERM whose exception a Ray wait swallowed

    backend = RayBackend(stop_requested=stop_requested)
    with pytest.raises(KeyboardInterrupt, match="stop requested"):
        jobs = [types.SimpleNamespace(id="a"), types.SimpleNamespace(id="b")]
        backend._run(fake, None, SMALL, jobs, base_seed=0, device="cpu", limit=2, finish=lambda job, row: None)
    assert fake.waits == 3 and len(fake.submitted) == 2
    assert fake.cancelled == fake.submitted   # every outstanding task cancelled
