"""The run directory as a hostile user finds it: a second writer, someone else's
files, malformed model files and run.json, absurd --jobs, killed invocations.

Each case must end in a one-line error or in the documented recovery (the model
is recomputed with a one-line warning naming the file), never in a traceback, a
deleted user file or a duplicated training.
"""

import json
import shutil
import subprocess
import sys
import warnings

import pytest

from experiments_fakes import TINY
from manifold_lab.experiments import sweep as sweep_module
from manifold_lab.experiments.backends import workers as local_workers
from manifold_lab.experiments.pipeline import run_experiment
from manifold_lab.experiments.rundir import (
    LOCK_FILE, RunDirError, RunLock, RunWarning, row_problem,
)
from manifold_lab.experiments.sweep import plan_jobs, run_sweep

N_JOBS = TINY.n_models + 1


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    return out, run_experiment(TINY, out, jobs=1, progress=False, figures=False)


@pytest.fixture
def calls(monkeypatch):
    """Ids of the models trained (the real run_job, counted)."""
    seen = []
    real = sweep_module.run_job

    def counting(preset, job, base_seed, device):
        seen.append(job.id)
        return real(preset, job, base_seed, device)

    monkeypatch.setattr(sweep_module, "run_job", counting)
    return seen


def _copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    return out


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- who may write


def test_a_second_writer_is_refused_naming_the_first(finished, tmp_path, calls):
    out = _copy(finished, tmp_path)
    (out / "models" / "none-s0.json").unlink()
    with RunLock(out):  # another run holds the directory
        with pytest.raises(RunDirError) as info:
            run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    message = _one_line(info)
    assert "being written by another run" in message and "pid " in message
    assert calls == []  # nothing trained twice
    # Once the first writer is gone, the directory is free again.
    run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    assert calls == ["none-s0"]


def test_the_lock_dies_with_a_killed_holder(tmp_path):
    code = ("import sys, time; from manifold_lab.experiments.rundir import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"pid {proc.pid} "):
            RunLock(tmp_path).__enter__()
        proc.kill()
        proc.wait(timeout=10)
        with RunLock(tmp_path):
            pass
    finally:
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- users' files


def test_a_directory_with_a_users_results_json_is_refused_untouched(tmp_path):
    (tmp_path / "results.json").write_text('{"mine": true}')
    with pytest.raises(RunDirError) as info:
        run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    assert "not a run directory" in _one_line(info) and "results.json" in str(info.value)
    assert (tmp_path / "results.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_an_empty_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunDirError, match="--out is empty"):
        run_experiment(TINY, "", jobs=1, progress=False, figures=False)
    assert list(tmp_path.iterdir()) == []


def test_a_run_killed_before_run_json_leaves_a_directory_that_is_reused(tmp_path):
    (tmp_path / LOCK_FILE).write_text("pid 1 on elsewhere\n")
    results = run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    assert len(results["models"]) == TINY.n_models


def test_a_run_json_that_is_not_ours_is_refused(tmp_path):
    (tmp_path / "run.json").write_text('{"name": "some other tool"}')
    with pytest.raises(RunDirError, match="not a run file"):
        run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    assert (tmp_path / "run.json").read_text() == '{"name": "some other tool"}'


# ---------------------------------------------------------------- malformed files


def _drop(key):
    def edit(stored):
        del stored["row"][key]
    return edit


def _set(key, value):
    def edit(stored):
        stored["row"][key] = value
    return edit


def _set_curve(stored):
    stored["row"]["robustness_curve"]["on"] = "high"


def _row_not_object(stored):
    stored["row"] = [1, 2]


def _replace(value):
    def edit(stored):
        stored.clear()
        stored.update(value)
    return edit


MODEL_FILE_DAMAGE = {
    "metric missing": ("pgd_l2-00-s0", _drop("on_robustness"), "on_robustness is missing"),
    "metric null": ("pgd_l2-00-s0", _set("off_robustness", None), "off_robustness is null"),
    "metric a string": ("pgd_l2-00-s0", _set("accuracy", "0.9"), "accuracy is str"),
    "metric a bool": ("smoothness-00-s0", _set("score_cosine", True), "score_cosine is bool"),
    "seed a string": ("smoothness-00-s0", _set("seed", "0"), "seed is missing or not"),
    "curve not numbers": ("gradient_norm-01-s0", _set_curve, "robustness_curve.on"),
    "theorem table gone": ("none-s0", _drop("theorem_3_1"), "theorem_3_1"),
    "row not an object": ("none-s0", _row_not_object, "row is not an object"),
    "id of another model": ("none-s0", _set("id", "pgd_l2-00-s0"), "is not its file name"),
    "no row": ("bayes_optimal", _replace({"fingerprint": "x"}), "is not a model file"),
    "bayes metric null": ("bayes_optimal", _set("on_robustness", None), "on_robustness is null"),
}


@pytest.mark.parametrize("case", list(MODEL_FILE_DAMAGE))
def test_a_malformed_model_file_is_recomputed_with_a_warning(finished, tmp_path, calls, case):
    job_id, edit, reason = MODEL_FILE_DAMAGE[case]
    out = _copy(finished, tmp_path)
    path = out / "models" / f"{job_id}.json"
    stored = json.loads(path.read_text())
    edit(stored)
    path.write_text(json.dumps(stored))
    with pytest.warns(RunWarning) as record:
        again = run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    messages = [str(w.message) for w in record if w.category is RunWarning]
    assert len(messages) == 1 and str(path) in messages[0] and reason in messages[0], messages
    assert "\n" not in messages[0]
    assert calls == [job_id]
    # The recomputed model has the numbers of the undamaged run (same seeds).
    assert json.loads(path.read_text())["row"]["accuracy"] == pytest.approx(
        json.loads((finished[0] / "models" / f"{job_id}.json").read_text())["row"]["accuracy"])
    for mine, theirs in zip(again["models"], finished[1]["models"]):
        assert mine["score_cosine"] == pytest.approx(theirs["score_cosine"], rel=1e-6)


def test_an_unreadable_model_file_is_recomputed_with_a_warning(finished, tmp_path, calls):
    out = _copy(finished, tmp_path)
    (out / "models" / "smoothness-00-s0.json").write_text('{"fingerprint": "tru')
    with pytest.warns(RunWarning, match=r"smoothness-00-s0\.json is unreadable"):
        run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    assert calls == ["smoothness-00-s0"]


RUN_FILE_DAMAGE = {
    "a list": ("[]", "not a run file"),
    "truncated": ('{"fingerprint": ', "unreadable"),
    "fingerprint a number": ('{"fingerprint": 5}', "not a run file"),
    "invocations null": (None, "invocations_s is not a list"),
    "invocations strings": (["a", 1.0], "invocations_s is not a list"),
}


@pytest.mark.parametrize("case", list(RUN_FILE_DAMAGE))
def test_a_malformed_run_json_is_rewritten_with_a_warning(finished, tmp_path, calls, case):
    text, reason = RUN_FILE_DAMAGE[case]
    out = _copy(finished, tmp_path)
    if not isinstance(text, str):  # a valid run.json whose invocations_s is broken
        stored = json.loads((out / "run.json").read_text())
        stored["invocations_s"] = text
        text = json.dumps(stored)
    (out / "run.json").write_text(text)
    with pytest.warns(RunWarning, match=reason):
        again = run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    assert calls == [] and again["resumed_models"] == N_JOBS  # every model file is reused
    stored = json.loads((out / "run.json").read_text())
    assert stored["invocations_s"] == [again["runtime_s"]]  # the lost history is dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)  # repaired: no warning the next time
        run_experiment(TINY, out, jobs=1, progress=False, figures=False)


def test_row_problem_accepts_what_run_job_writes(finished):
    # The check must not reject real rows (else every rerun would recompute them).
    theorem = {job.id for job in plan_jobs(TINY, 0) if job.theorem}
    for path in (finished[0] / "models").glob("*.json"):
        row = json.loads(path.read_text())["row"]
        assert row_problem(row, trained=path.stem != "bayes_optimal",
                           theorem=path.stem in theorem) is None, path.name


def test_a_ratio_stored_as_null_is_a_finished_model(finished, tmp_path, calls):
    # off_on_ratio = R_N / R_T is infinite (stored as null) when R_T = 0: legitimate.
    out = _copy(finished, tmp_path)
    path = out / "models" / "pgd_l2-00-s0.json"
    stored = json.loads(path.read_text())
    stored["row"]["off_on_ratio"] = None
    path.write_text(json.dumps(stored))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunWarning)
        run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    assert calls == []


# ---------------------------------------------------------------- --jobs


def test_jobs_are_capped_by_models_cpus_and_memory(monkeypatch):
    monkeypatch.setattr(local_workers, "usable_cpus", lambda: 2)
    monkeypatch.setattr(local_workers, "available_memory",
                        lambda: 3 * local_workers.WORKER_MEMORY_BYTES)
    n, note = local_workers.worker_count(1000, 18, "cpu")
    assert n == 2 and note.startswith("--jobs 1000 capped to 2 (18 model(s) to run, "
                                      "2 usable CPU(s), memory for 3 worker(s)")
    assert local_workers.worker_count(1000, 18, "cuda")[0] == 3  # GPU work: memory decides
    assert local_workers.worker_count(1000, 1, "cuda")[0] == 1
    assert local_workers.worker_count(2, 18, "cpu") == (2, None)  # within the caps: silent
    assert local_workers.worker_count(None, 18, "cpu") == (2, None)  # "auto": the CPUs
    assert local_workers.worker_count(None, 18, "cuda") == (2, None)  # not the memory
    assert local_workers.worker_count(None, 1, "cpu") == (1, None)  # capped silently


def test_a_huge_jobs_is_capped_and_said(tmp_path, monkeypatch):
    monkeypatch.setattr(local_workers, "available_memory",
                        lambda: local_workers.WORKER_MEMORY_BYTES)  # room for one worker
    with pytest.warns(RunWarning, match=r"--jobs 1000 capped to 1 \(7 model\(s\) to run"):
        rows = run_sweep(TINY, tmp_path, jobs=1000)
    assert len(rows) == N_JOBS


# ---------------------------------------------------------------- runtime


def test_failed_invocations_count_in_runtime_total(tmp_path, monkeypatch):
    real = sweep_module.run_job

    def fail_on_pgd(preset, job, base_seed, device):
        if job.regularizer == "pgd_l2":
            raise RuntimeError("simulated crash")
        return real(preset, job, base_seed, device)

    monkeypatch.setattr(sweep_module, "run_job", fail_on_pgd)
    with pytest.raises(RuntimeError):
        run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    failed = json.loads((tmp_path / "run.json").read_text())["invocations_s"]
    assert len(failed) == 1 and failed[0] > 0
    monkeypatch.setattr(sweep_module, "run_job", real)
    results = run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    assert results["runtime_total_s"] == pytest.approx(failed[0] + results["runtime_s"])
