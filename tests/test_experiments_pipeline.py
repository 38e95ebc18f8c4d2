"""The experiment pipeline end to end on a tiny preset: train, evaluate, resume, parallel.

The tiny preset keeps every layer real (distribution, MLP, all four objectives,
metrics) at toy size, so the whole file runs in seconds.
"""

import dataclasses
import json
import shutil

import pytest

from experiments_fakes import SMALL, TINY
from manifold_lab.experiments import sweep as sweep_module
from manifold_lab.experiments.evaluate import evaluate_model, make_eval_set
from manifold_lab.experiments.pipeline import run_experiment
from manifold_lab.experiments.presets import get_preset

N_JOBS = TINY.n_models + 1  # + Bayes-optimal

REQUIRED = ("regularizer", "strength", "seed", "accuracy", "on_robustness", "off_robustness",
            "alignment_ratio", "tangent_fraction", "score_cosine", "cond_score_cosine", "regime")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    results = run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    return out, results


def test_results_json_has_the_documented_schema(first_run):
    out, results = first_run
    stored = json.loads((out / "results.json").read_text())
    assert stored["complete"] is True and stored["preset"] == "tiny_sphere"
    assert len(stored["models"]) == TINY.n_models
    for row in stored["models"]:
        for key in REQUIRED:
            assert key in row, key
        assert row["regime"] in ("weak", "bayes_aligned", "excessive")
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["tangent_fraction"] <= 1.0
        assert len(row["robustness_curve"]["on"]) == len(TINY.eval.sigmas)
    assert {"accuracy", "on_robustness", "score_cosine"} <= set(stored["bayes_optimal"])
    assert [t["model"] for t in stored["theorem_3_1"]] == ["bayes_optimal", "none-s0"]
    assert stored["runtime_s"] > 0
    assert {p.name for p in out.iterdir()} >= {"models.csv", "robustness_curves.csv",
                                                "summary.txt", "theorem_3_1.md", "run.json"}


def test_bayes_row_matches_the_exact_gradient(first_run):
    _, results = first_run
    bayes = results["bayes_optimal"]
    # The Bayes model's autograd gradient of log p(y|x) is the closed-form
    # posterior_grad: cosine 1 up to float32 rounding of a d=24 dot product
    # (relative error ~ d * 6e-8 ~ 1e-6; allow 1e-4 for the float64->32 casts).
    assert bayes["score_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert bayes["on_robustness"] > 0 and bayes["off_robustness"] >= 0


def test_rerun_resumes_everything_with_identical_numbers(first_run, tmp_path):
    out, results = first_run
    again = run_experiment(TINY, out, jobs=1, progress=False, figures=False)
    assert again["resumed_models"] == N_JOBS
    # Both invocations are counted in the total; this one only read finished models.
    assert again["runtime_total_s"] >= results["runtime_s"] + again["runtime_s"] - 1e-9
    assert [r["score_cosine"] for r in again["models"]] == \
        [r["score_cosine"] for r in results["models"]]


def test_a_crash_leaves_no_results_json_and_resume_recomputes_only_the_rest(
        first_run, tmp_path, monkeypatch):
    out, results = first_run
    calls = []
    real_run_job = sweep_module.run_job

    def flaky(preset, job, base_seed, device):
        calls.append(job.id)
        if len(calls) == 3 and not crashed:
            crashed.append(job.id)
            raise RuntimeError("simulated crash")
        return real_run_job(preset, job, base_seed, device)

    crashed = []

    monkeypatch.setattr(sweep_module, "run_job", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    assert not (tmp_path / "results.json").exists()
    assert len(list((tmp_path / "models").glob("*.json"))) == 2

    calls.clear()
    resumed = run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    assert len(calls) == N_JOBS - 2 and resumed["resumed_models"] == 2
    # Same seeds, same numbers as the uninterrupted run (CPU training is deterministic).
    by_id = {r["id"]: r for r in results["models"]}
    for row in resumed["models"]:
        assert row["score_cosine"] == pytest.approx(by_id[row["id"]]["score_cosine"], rel=1e-6)


def test_deleted_model_invalidates_an_old_results_json(first_run, tmp_path, monkeypatch):
    out, _ = first_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "models" / "pgd_l2-00-s0.json").unlink()
    seen = {}
    real = sweep_module.run_job

    def spy(preset, job, base_seed, device):
        seen["results_json_during_run"] = (copy / "results.json").exists()
        return real(preset, job, base_seed, device)

    monkeypatch.setattr(sweep_module, "run_job", spy)
    again = run_experiment(TINY, copy, jobs=1, progress=False, figures=False)
    assert seen == {"results_json_during_run": False}
    assert again["resumed_models"] == N_JOBS - 1


def test_parallel_jobs_give_the_same_rows(first_run, small_parallel_run):
    _, results = first_run
    _, par = small_parallel_run  # SMALL (TINY's first regulariser) by two worker processes
    assert len(par["models"]) == SMALL.n_models
    by_id = {r["id"]: r for r in results["models"]}
    for row in par["models"]:
        # Worker processes use 1 torch thread instead of the caller's count; the
        # tiny MLP's reductions are short enough that results agree to rounding.
        assert row["on_robustness"] == pytest.approx(by_id[row["id"]]["on_robustness"], rel=1e-4)
        assert row["score_cosine"] == pytest.approx(by_id[row["id"]]["score_cosine"], rel=1e-4)


def test_evaluate_on_the_bayes_model_of_the_real_preset_geometry():
    # Real toy_sphere geometry (R^512), few points: the Bayes-optimal gradient at
    # on-manifold points is nearly tangent (docs/theory.md, curved M with small noise).
    preset = get_preset("toy_sphere")
    reference = preset.data.build(0)
    spec = dataclasses.replace(preset.eval, n_points=32, n_accuracy=256, n_samples=4)
    es = make_eval_set(reference, spec, seed=0)
    row = evaluate_model(reference.reference_model(), es, spec, seed=0)
    assert row["score_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert row["tangent_fraction"] > 0.9  # chance level would be sqrt(2/512) = 0.06
    assert row["off_on_ratio"] < 1.0


@pytest.mark.gpu
def test_tiny_run_on_cuda(cuda_device, tmp_path, first_run):
    _, cpu = first_run
    results = run_experiment(TINY, tmp_path, device=str(cuda_device), jobs=1, progress=False,
                             figures=False)
    assert len(results["models"]) == TINY.n_models
    # Same seeds and data; GPU kernels round differently, so only the exact
    # Bayes reference must agree closely (float32 cosine of identical vectors).
    assert results["bayes_optimal"]["score_cosine"] == pytest.approx(1.0, abs=1e-4)
    # Same held-out samples: at most a near-tie point or two may flip class.
    assert results["bayes_optimal"]["accuracy"] == pytest.approx(
        cpu["bayes_optimal"]["accuracy"], abs=2 / TINY.eval.n_accuracy)


def test_a_failing_model_is_named_in_a_one_line_error(tmp_path, monkeypatch):
    def diverge(preset, job, base_seed, device):
        raise ValueError("loss is nan at epoch 3, step 7; lower the learning rate")

    monkeypatch.setattr(sweep_module, "run_job", diverge)
    with pytest.raises(ValueError, match=r"^model \S+: loss is nan") as info:
        run_experiment(TINY, tmp_path, jobs=1, progress=False, figures=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "results.json").exists()
