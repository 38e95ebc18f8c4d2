"""The local backend: this process, or a pool of worker processes on this machine.

``workers > 1`` runs jobs in a ``ProcessPoolExecutor`` of "spawn" workers, each
with ``cpus // workers`` torch threads so workers do not oversubscribe the cores
(how many workers, how they start and how they stop: ``backends.workers``). Job
seeds do not depend on the number of workers or on completion order, so results
do not either. With fitted ground truth, ``run_while_fitting`` runs the fits in
the same pool and trains models beside them (``backends.overlap``).
"""

from __future__ import annotations

import concurrent.futures as cf
import warnings
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from manifold_lab.experiments.backends import overlap
from manifold_lab.experiments.backends.base import model_error
from manifold_lab.experiments.backends.workers import stop_workers, usable_cpus, worker_count, worker_pool
from manifold_lab.experiments.rundir import RunWarning

__all__ = ["LocalBackend"]


class LocalBackend:
    """Jobs in this process (one worker) or in spawned worker processes."""

    name = "local"

    def run(self, fn: Callable, preset, jobs: Sequence, *, base_seed: int, device: str,
            workers: int | None, finish: Callable) -> None:
        """See ``backends.Backend.run``; stops at the first failing job."""
        n, note = worker_count(workers, len(jobs), device)
        if note:
            warnings.warn(note, RunWarning, stacklevel=2)
        if n <= 1:
            for job in jobs:
                try:
                    row = fn(preset, job, base_seed, device)
                except ValueError as exc:
                    # A ValueError from a layer below (e.g. the trainer's non-finite-loss
                    # error) is a one-line message; say which model it came from.
                    raise model_error(job, exc) from exc
                finish(job, row)
            return
        pool = worker_pool(n, max(1, usable_cpus() // n))
        try:
            futures = {pool.submit(fn, preset, job, base_seed, device): job for job in jobs}
            for fut in cf.as_completed(futures):
                job = futures[fut]
                try:
                    row = fut.result()
                except ValueError as exc:
                    raise model_error(job, exc) from exc
                except BrokenProcessPool as exc:
                    raise model_error(job, "a worker process died (killed, or out of memory); "
                                           "finished models are kept, rerun to resume") from exc
                finish(job, row)
        except BaseException:
            stop_workers(pool)
            raise
        pool.shutdown(wait=True)

    def run_while_fitting(self, fit: Callable, train: Callable, evaluate: Callable, run: Callable, preset,
                          jobs: Sequence, *, base_seed: int, device: str, workers: int | None,
                          finish: Callable) -> bool:
        """Fit the ground truth and run ``jobs`` in one pool, models training beside the
        fits; False (nothing run) where that does not apply: one worker or not the CPU.
        See ``backends.overlap.run_while_fitting`` and ``Backend.run_while_fitting``."""
        return overlap.run_while_fitting(fit, train, evaluate, run, preset, jobs, base_seed=base_seed,
                                         device=device, workers=workers, finish=finish)
