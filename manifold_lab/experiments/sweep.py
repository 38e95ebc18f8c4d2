"""Running the grid: one job per model, resumable, in parallel on one machine.

Each job (one regulariser, strength and seed, or the regime reference's model)
is independent and deterministic: it rebuilds the data kind's reference and held-out points
from the run's base seed, samples its own training set, trains, evaluates, and
returns a JSON-ready row. Finished rows are written atomically to
``OUT/models/<job id>.json`` as they arrive, tagged with a fingerprint of
everything that determines them; a rerun into the same ``OUT`` skips every job
whose file is present with the same fingerprint.

Execution is delegated to a backend (``experiments.backends``): ``local`` runs
jobs in this process or in worker processes on this machine, ``ray`` runs each
job as a Ray task on a local instance or a cluster. A kind with fitted ground
truth (``DataSpec.fits_reference``) is fitted once per run: with local workers in
the same pool as the models, which train on the cores the fits leave free
(``backends.overlap``; :func:`train_job` and :func:`evaluate_job` are the two
halves of :func:`run_job` it runs apart); elsewhere before any job. Workers only
compute and return rows; this process writes every file. Job seeds do not depend on the
backend, the number of workers or completion order, so results do not either.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

import manifold_lab
from manifold_lab.experiments.backends import Backend, get_backend
from manifold_lab.experiments.backends.workers import usable_cpus  # usable_cpus: public API
from manifold_lab.experiments.build import build_model, training_data
from manifold_lab.experiments.evaluate import evaluate_model, make_eval_set, theorem_table
from manifold_lab.experiments.kinds.images import folder_stamp
from manifold_lab.experiments.specs import Preset, preset_to_dict
from manifold_lab.experiments.reference import BAYES_OPTIMAL
from manifold_lab.experiments.reference_files import ReferenceFiles
from manifold_lab.experiments.reports import atomic_write_json
from manifold_lab.experiments.rundir import MODELS_DIR, read_model_file
from manifold_lab.training import make_objective, objective_class, train

__all__ = [
    "BAYES_ID",
    "REFERENCE_DIR",
    "Job",
    "job_cost",
    "plan_jobs",
    "run_fingerprint",
    "run_job",
    "train_job",
    "evaluate_job",
    "load_finished",
    "run_sweep",
    "usable_cpus",
]

BAYES_ID = BAYES_OPTIMAL.job
#: Subdirectory of a run directory where a kind with ``fits_reference`` keeps its fits.
REFERENCE_DIR = "reference"


def job_cost(job: "Job") -> float:
    """Rough cost of one training epoch relative to cross-entropy (the objective's
    ``relative_cost``; 0 for the untrained reference model), used only to start
    the most expensive jobs first so parallel workers finish together."""
    return 0.0 if job.reference else float(objective_class(job.regularizer).relative_cost)


@dataclass(frozen=True)
class Job:
    """One model of the grid. ``regularizer`` is ``"none"``, a regulariser name or,
    for the regime reference's own model (``reference=True``), that job's id
    (``"bayes_optimal"``); ``seed`` is the model's own seed (base seed + seed
    index); ``options`` are the sweep entry's ``make_objective`` options."""

    regularizer: str
    strength: float
    strength_index: int
    seed: int
    seed_index: int
    theorem: bool = False
    options: tuple[tuple[str, object], ...] = ()
    reference: bool = False

    @property
    def id(self) -> str:
        if self.reference:
            return self.regularizer
        if self.regularizer == "none":
            return f"none-s{self.seed_index}"
        return f"{self.regularizer}-{self.strength_index:02d}-s{self.seed_index}"


def plan_jobs(preset: Preset, base_seed: int) -> list[Job]:
    """Every job of a run: the regime reference's model (when the data kind has
    one: the Bayes-optimal model of exact kinds), ``n_seeds`` unregularised
    models, and ``n_seeds`` models per (regulariser, strength). Model seeds are
    ``base_seed + seed_index``; Theorem 3.1 tables go to seed index 0 of each
    model named in ``preset.theorem_models`` and to the reference model."""
    wanted = set(preset.theorem_models)
    jobs = []
    reference_job = preset.data.regime_reference.job
    if reference_job is not None:
        jobs.append(Job(reference_job, 0.0, 0, base_seed, 0, theorem=True, reference=True))
    for s in range(preset.n_seeds):
        jobs.append(Job("none", 0.0, 0, base_seed + s, s, theorem=s == 0 and ("none", 0) in wanted))
    for name, strengths, options in preset.sweep:
        for i, strength in enumerate(strengths):
            for s in range(preset.n_seeds):
                jobs.append(Job(name, float(strength), i, base_seed + s, s,
                                theorem=s == 0 and (name, i) in wanted,
                                options=tuple(sorted(options.items()))))
    return jobs


def run_fingerprint(preset: Preset, base_seed: int) -> str:
    """Hash of everything that determines the per-model rows.

    Excludes the regime thresholds and the description: labels are recomputed
    from stored numbers, so changing a threshold reuses finished models.
    """
    config = preset_to_dict(preset)
    config.pop("thresholds")
    config.pop("description")
    config["base_seed"] = base_seed
    config["version"] = manifold_lab.__version__
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def run_job(preset: Preset, job: Job, base_seed: int, device: str, *,
            cache_dir: str | os.PathLike | None = None, reference_files: ReferenceFiles | None = None) -> dict:
    """Train (unless it is the reference model) and evaluate one model; return its row.

    ``cache_dir`` is passed to the data kind's ``build`` (where a learned kind
    keeps what it fits once per run); ``reference_files``, the driver's fits by
    value, replaces it with a folder on this machine that holds them.
    """
    if reference_files is not None:
        cache_dir = reference_files.folder()
    reference, es = _reference_and_eval_set(preset, base_seed, device, cache_dir)
    if job.reference:
        model = reference.reference_model().to(device)
        row = {"id": job.id, "epochs_run": 0, "train_s": 0.0, "train_cpu_s": 0.0}
    else:
        model, row = _train(preset, job, reference, device)
    return _evaluate(preset, job, base_seed, model, es, row)


def train_job(preset: Preset, job: Job, base_seed: int, device: str) -> tuple[dict, dict]:
    """The first half of :func:`run_job` for a trained model, before the run's fits exist:
    ``(state_dict on the CPU, row so far)``. The training data come from
    ``DataSpec.training_reference``, which fits nothing; :func:`evaluate_job` finishes the
    row with the same numbers as :func:`run_job`."""
    if job.reference:
        raise ValueError(f"train_job: {job.id} is the reference model, which is not trained")
    model, row = _train(preset, job, preset.data.training_reference(base_seed), device)
    return {k: v.detach().to("cpu") for k, v in model.state_dict().items()}, row


def evaluate_job(preset: Preset, job: Job, base_seed: int, device: str, state: dict, row: dict, *,
                 reference_files: ReferenceFiles) -> dict:
    """The second half of :func:`run_job`: evaluate the model trained by :func:`train_job`
    (its ``state`` and ``row``) against the run's fits (``reference_files``)."""
    _, es = _reference_and_eval_set(preset, base_seed, device, reference_files.folder())
    model = build_model(preset.model, preset.data, seed=job.seed)
    model.load_state_dict(state)
    return _evaluate(preset, job, base_seed, model.to(device), es, dict(row))


def _train(preset: Preset, job: Job, reference, device: str) -> tuple[torch.nn.Module, dict]:
    """Train ``job``'s model on its training data from ``reference``: ``(model, row)``."""
    t0, c0 = time.perf_counter(), time.process_time()
    x, y = training_data(reference, preset.train, seed=job.seed)
    model = build_model(preset.model, preset.data, seed=job.seed)
    objective = make_objective(job.regularizer, job.strength, **dict(job.options))
    spec = preset.train
    result = train(
        model, objective, data=(x, y), epochs=spec.epochs, lr=spec.lr * objective.lr_factor(),
        optimizer=spec.optimizer, batch_size=spec.batch_size, weight_decay=spec.weight_decay,
        lr_milestones=spec.milestone_epochs(), lr_gamma=spec.lr_gamma, augment=spec.augment,
        device=device, seed=job.seed, progress=False,
    )
    row = {"id": job.id, "regularizer": job.regularizer, "strength": job.strength,
           "strength_index": job.strength_index, "seed": job.seed, "epochs_run": result.epochs_run,
           "train_s": time.perf_counter() - t0, "train_cpu_s": time.process_time() - c0}
    return result.model, row


def _evaluate(preset: Preset, job: Job, base_seed: int, model: torch.nn.Module, es, row: dict) -> dict:
    """``row`` completed with every metric of ``model`` on the run's eval set ``es``."""
    t1, c1 = time.perf_counter(), time.process_time()
    # One noise seed for every model: common random numbers across the sweep.
    row.update(evaluate_model(model, es, preset.eval, seed=base_seed))
    if job.theorem:
        row["theorem_3_1"] = theorem_table(model, es, preset.eval, seed=base_seed)
    row["eval_s"] = time.perf_counter() - t1
    # CPU seconds of this process (every torch thread of it): on a shared machine,
    # what the model cost, where wall seconds also count the waiting.
    row["eval_cpu_s"] = time.process_time() - c1
    return row


#: The last (key, reference, eval set) this process built: every job of a run shares them,
#: and for image kinds building them (tangent Jacobians, scores, Bayes gradients at every
#: test image) costs seconds per job. One entry, so a process that serves another run
#: rebuilds; the objects are deterministic in the key, so results do not change.
_LAST_EVAL_SET: list = []


def _reference_and_eval_set(preset: Preset, base_seed: int, device: str, cache_dir) -> tuple:
    data_dir = getattr(preset.data, "data_dir", None)  # a changed data file is a new key
    key = (run_fingerprint(preset, base_seed), str(device), None if cache_dir is None else str(cache_dir),
           folder_stamp(data_dir) if data_dir else ())
    if _LAST_EVAL_SET and _LAST_EVAL_SET[0] == key:
        return _LAST_EVAL_SET[1], _LAST_EVAL_SET[2]
    reference = preset.data.build(base_seed, cache_dir=cache_dir)
    es = make_eval_set(reference, preset.eval, seed=base_seed, device=device)
    _LAST_EVAL_SET[:] = [key, reference, es]
    return reference, es


def load_finished(models_dir: Path, fingerprint: str, *, plan: list[Job] | None = None,
                  quiet: bool = False) -> dict[str, dict]:
    """Rows already finished under ``models_dir`` with this fingerprint.

    Files that are unreadable, malformed (missing or null metrics, wrong types) or
    of another configuration are left out, so their models are recomputed, each
    with a one-line ``rundir.RunWarning`` naming the file (unless ``quiet``). With
    ``plan``, only its jobs' files are read, and a model that owes a Theorem 3.1
    table must have one.
    """
    finished: dict[str, dict] = {}
    if not models_dir.is_dir():
        return finished
    wanted = None if plan is None else {job.id: job for job in plan}
    for path in sorted(models_dir.glob("*.json")):
        job = None if wanted is None else wanted.get(path.stem)
        if wanted is not None and job is None:
            continue
        row = read_model_file(path, fingerprint, trained=not (job.reference if job is not None else path.stem == BAYES_ID),
                              theorem=job is not None and job.theorem, quiet=quiet)
        if row is not None:
            finished[row["id"]] = row
    return finished


def run_sweep(
    preset: Preset,
    out_dir: str | os.PathLike,
    *,
    base_seed: int = 0,
    device: str = "cpu",
    jobs: int | None = 1,
    on_done: Callable[[Job, dict, bool], None] | None = None,
    backend: Backend | str = "local",
) -> dict[str, dict]:
    """Run every job not already finished in ``out_dir/models``; return all rows by id.

    Parameters
    ----------
    preset : Preset
    out_dir : path
        Run directory; rows go to ``out_dir/models/<id>.json``.
    base_seed : int
    device : str
        Torch device of training and evaluation.
    jobs : int or None
        Models at a time (local: worker processes, 1 = this process; ray: tasks in
        flight). None: as many as the backend's resources allow.
    on_done : callable, optional
        Called as ``on_done(job, row, resumed)`` after each job (progress bars).
    backend : Backend or str
        ``"local"``, ``"ray"`` or a configured backend (``backends.ray.RayBackend``).
    """
    models_dir = Path(out_dir) / MODELS_DIR
    models_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = run_fingerprint(preset, base_seed)
    plan = plan_jobs(preset, base_seed)
    rows = load_finished(models_dir, fingerprint, plan=plan)
    pending = [job for job in plan if job.id not in rows]
    for job in plan:
        if job.id in rows and on_done is not None:
            on_done(job, rows[job.id], True)
    pending.sort(key=lambda j: -job_cost(j))

    def finish(job: Job, row: dict) -> None:
        atomic_write_json(models_dir / f"{job.id}.json", {"fingerprint": fingerprint, "row": row})
        rows[job.id] = row
        if on_done is not None:
            on_done(job, row, False)

    if pending:
        # run_job is looked up here, at call time, so tests can substitute it.
        fn = run_job
        runner = get_backend(backend)
        if preset.data.fits_reference:
            # Fit the kind's ground truth once per run (resume reuses it); the files
            # travel with every job, so workers on other machines need no shared
            # filesystem (experiments.reference_files).
            cache_dir = Path(out_dir) / REFERENCE_DIR

            def fit(fit_runner=None) -> ReferenceFiles:
                preset.data.build(base_seed, cache_dir=str(cache_dir), fit_runner=fit_runner)
                return ReferenceFiles.read(cache_dir)

            # A backend that can train models while the fits run does (the local one:
            # backends.overlap) ...
            run_while_fitting = getattr(runner, "run_while_fitting", None)
            if run_while_fitting is not None and run_while_fitting(
                    fit, train_job, evaluate_job, fn, preset, pending, base_seed=base_seed, device=device,
                    workers=jobs, finish=finish):
                return {job.id: rows[job.id] for job in plan}
            # ... elsewhere the fits come first, here, before any job.
            fn = functools.partial(fn, reference_files=fit())
        runner.run(fn, preset, pending, base_seed=base_seed, device=device, workers=jobs, finish=finish)
    return {job.id: rows[job.id] for job in plan}
