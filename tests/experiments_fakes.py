"""Fake sweep rows for testing reports, labels and figures without training.

The numbers follow the paper's story in closed form (not a simulation): with
strength s, on-manifold sensitivity R_T = ref * 1.1 / (1 + (s / s_exc)^2) and the
ratio R_N/R_T = 1.8 / (1 + 30 s / s_exc), so a log grid passes weak ->
bayes_aligned -> excessive; per-seed jitter is a fixed +-2%.
"""

import dataclasses
import math

from manifold_lab.experiments.kinds import VmfSphereSpec
from manifold_lab.experiments.presets import EvalSpec, ModelSpec, Preset, TrainSpec, log_strengths
from manifold_lab.experiments.sweep import plan_jobs

REF_ON = 0.036
SIGMAS = (0.03, 0.1, 0.3)

FAKE_PRESET = Preset(
    name="fake",
    description="fake rows for tests",
    data=VmfSphereSpec(ambient_dim=16, intrinsic_dim=2, n_classes=3, noise_std=0.01),
    model=ModelSpec("MLP", {"hidden": (8,)}),
    train=TrainSpec(n_train=10, epochs=1, lr=1e-3, batch_size=10),
    eval=EvalSpec(n_points=4, n_accuracy=4, sigma=0.1, sigmas=SIGMAS, n_samples=2,
                  theorem_sigmas=(0.01, 0.1), theorem_points=2, theorem_samples=2),
    sweep=(("gradient_norm", log_strengths(1e-3, 10.0, 8)),
           ("noise_augmentation", log_strengths(1e-2, 10.0, 8))),
    n_seeds=2,
    theorem_models=(("none", 0),),
)

_S_EXC = {"gradient_norm": 1.0, "noise_augmentation": 2.0, "none": math.inf}


def _metrics(on: float, ratio: float, cos: float, acc: float) -> dict:
    off = on * ratio
    return {
        "accuracy": acc, "nll": 1.0 - acc, "on_robustness": on, "off_robustness": off,
        "on_stderr": on / 50, "off_stderr": off / 50, "off_on_ratio": ratio,
        "alignment_ratio": ratio * 0.9, "alignment_ratio_median": ratio * 0.8,
        "tangent_fraction": 1 / math.sqrt(1 + ratio), "score_cosine": cos,
        "cond_score_cosine": cos * 0.8,
        "robustness_curve": {
            "sigmas": list(SIGMAS),
            "on": [on * (s / 0.1) ** 2 for s in SIGMAS],
            "off": [off * (s / 0.1) ** 2 for s in SIGMAS],
            "on_stderr": [on / 50] * 3, "off_stderr": [off / 50] * 3,
        },
    }


def fake_rows(preset: Preset = FAKE_PRESET, base_seed: int = 0) -> dict:
    """Rows by job id, as ``run_sweep`` returns them."""
    rows = {}
    for job in plan_jobs(preset, base_seed):
        if job.reference:
            row = {"id": job.id, "epochs_run": 0, "train_s": 0.0, "eval_s": 0.1,
                   **_metrics(REF_ON, 0.05, 1.0, 0.75)}
        else:
            x = job.strength / _S_EXC[job.regularizer]
            jitter = 1.0 + (0.02 if job.seed_index else -0.02)
            on = REF_ON * 1.1 / (1 + x * x) * jitter
            ratio = 1.8 / (1 + 30 * x)
            cos = 0.5 + 0.4 * math.exp(-(math.log10(max(x, 1e-12)) + 1.2) ** 2)
            acc = 0.73 / (1 + x ** 3)
            row = {"id": job.id, "regularizer": job.regularizer, "strength": job.strength,
                   "strength_index": job.strength_index, "seed": job.seed,
                   "epochs_run": 1, "train_s": 1.0, "eval_s": 0.2,
                   **_metrics(on, ratio, cos * jitter, acc)}
        if job.theorem:
            row["theorem_3_1"] = {"rows": [{"sigma": 0.1, "ratio": 1.0}],
                                  "markdown": "| sigma | ratio |\n|---|---|\n| 0.1 | 1.0 |"}
        rows[job.id] = row
    return rows


#: Test-sized toy_sphere: every layer real (distribution, MLP, all four objectives,
#: metrics) at toy size, so an end-to-end run takes about a second.
TINY = Preset(
    name="tiny_sphere",
    description="test-sized toy_sphere",
    data=VmfSphereSpec(ambient_dim=24, intrinsic_dim=2, n_classes=3, noise_std=0.05,
                       concentration=4.0),
    model=ModelSpec("MLP", {"hidden": (16,), "activation": "softplus"}),
    train=TrainSpec(n_train=96, epochs=2, lr=1e-2, batch_size=48),
    eval=EvalSpec(n_points=16, n_accuracy=64, sigma=0.1, sigmas=(0.03, 0.1), n_samples=4,
                  theorem_sigmas=(0.01, 0.1), theorem_points=4, theorem_samples=8),
    sweep=(("gradient_norm", (0.01, 1.0)), ("smoothness", (0.1,)),
           ("noise_augmentation", (0.1,)), ("pgd_l2", (0.1,))),
    n_seeds=1,
    theorem_models=(("none", 0),),
)
#: TINY with its first regulariser only: every kind of job (Bayes-optimal, unregularised,
#: regularised) at the least cost (``conftest.small_parallel_run``, the Ray backend's tests).
SMALL = dataclasses.replace(TINY, sweep=TINY.sweep[:1])


# --- stand-ins for sweep.run_job in worker processes (importable by reference) ---


def sleeping_run_job(preset, job, base_seed, device, *, marker_dir, except_for=()):
    """Record this worker's pid in ``marker_dir`` and sleep (a model that never
    ends); jobs named in ``except_for`` run for real."""
    import os
    import time
    from pathlib import Path

    from manifold_lab.experiments.sweep import run_job

    if job.id in except_for:
        return run_job(preset, job, base_seed, device)
    (Path(marker_dir) / str(os.getpid())).write_text(job.id)
    time.sleep(300)
    raise AssertionError("the test should have stopped this worker")


def dying_run_job(preset, job, base_seed, device, *, marker_dir, victim):
    """``run_job``, except that the first attempt of job ``victim`` kills its own
    worker process with SIGKILL (a lost worker: out-of-memory killer, node failure)."""
    import os
    import signal
    from pathlib import Path

    from manifold_lab.experiments.sweep import run_job

    marker = Path(marker_dir) / f"killed-{job.id}"
    if job.id == victim and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(preset, job, base_seed, device)


def failing_run_job(preset, job, base_seed, device, *, marker_dir, flaky, broken):
    """``run_job``, except that job ``flaky`` raises a RuntimeError on its first
    attempt (transient) and job ``broken`` always raises a ValueError (deterministic)."""
    from pathlib import Path

    from manifold_lab.experiments.sweep import run_job

    marker = Path(marker_dir) / f"failed-{job.id}"
    if job.id == flaky and not marker.exists():
        marker.write_text("1")
        raise RuntimeError("transient failure")
    if job.id == broken:
        raise ValueError("loss is nan at epoch 1, step 1; lower the learning rate")
    return run_job(preset, job, base_seed, device)


# --- stand-ins for the fits and the job halves of backends.overlap (importable by reference) ---

def _record(marker_dir: str, name: str, seconds: float) -> None:
    """Write ``<marker_dir>/<name>.json`` with the task's start and end (``time.time``),
    after sleeping ``seconds``."""
    import json
    import os
    import time

    start = time.time()
    time.sleep(seconds)
    path = os.path.join(marker_dir, f"{name}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump({"start": start, "end": time.time()}, fh)
    os.replace(path + ".tmp", path)


def timed_fit_task(marker_dir: str, name: str, seconds: float) -> str:
    """A fit that takes ``seconds``; raises ValueError when ``name`` starts with 'bad', and
    its worker process exits at once when it starts with 'dying'."""
    _record(marker_dir, f"fit-{name}", seconds)
    if name.startswith("bad"):
        raise ValueError(f"fit {name} failed")
    if name.startswith("dying"):
        import os

        os._exit(1)  # as a worker killed by the kernel
    return name


def timed_train(preset, job, base_seed, device, *, marker_dir, seconds):
    _record(marker_dir, f"train-{job.id}", seconds)
    if job.id.startswith("bad"):
        raise ValueError("training diverged\nsecond line")
    return {"weights": job.id}, {"id": job.id, "trained_in_half": True}


def timed_evaluate(preset, job, base_seed, device, state, row, *, reference_files, marker_dir, seconds):
    _record(marker_dir, f"evaluate-{job.id}", seconds)
    return {**row, "state": state["weights"], "files": reference_files}


def timed_run(preset, job, base_seed, device, *, reference_files, marker_dir, seconds):
    _record(marker_dir, f"run-{job.id}", seconds)
    return {"id": job.id, "files": reference_files}
