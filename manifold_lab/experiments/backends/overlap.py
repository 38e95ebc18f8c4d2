"""Training models on the cores the ground-truth fits leave free (local workers).

An image kind fits two networks before its models can be evaluated: an
autoencoder (the tangent spaces) and a denoiser (the score). Side by side they
take two cores, and the autoencoder finishes first: on the ``mnist`` preset one of
two cores then idled for three of the fits' four minutes. Training a model needs
only its training images, not the fits; evaluating it needs both. So one pool of
worker processes runs, in this order of priority,

1. the fits (submitted by the data kind through ``fit_runner``, always first);
2. while a fit is still running, on a free worker: the training half of the next
   model (``train(preset, job, base_seed, device) -> (state, row)``, the most
   expensive jobs first);
3. once the fits are done: the evaluation of each model trained meanwhile
   (``evaluate(..., state, row, reference_files=...)``), then whole jobs
   (``run(..., reference_files=...)``) for the rest.

No more tasks run at once than there are workers, so the cores are never
oversubscribed; each worker has ``cpus // workers`` torch threads, the fits
included. The rows are those of whole jobs: a model is trained from the same
seed and evaluated against the same fits, whatever half of it ran when.
A model trained but not yet evaluated when the run stops is lost (rerun: it is
trained again); finished models are written as they come (``finish``).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import functools
import threading
import warnings
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from manifold_lab.experiments.backends.base import model_error
from manifold_lab.experiments.backends.workers import stop_workers, usable_cpus, worker_count, worker_pool
from manifold_lab.experiments.rundir import RunWarning

__all__ = ["run_while_fitting"]

#: Seconds between the scheduler's checks when nothing has finished (it is woken at
#: once by a finished task; the timeout only bounds the wait for a stop signal).
_POLL_S = 0.5


class _Slots:
    """A process pool with a count of busy workers; every finished task wakes the
    scheduler. Only the scheduler's thread (this process's main thread) submits: the
    pool starts its workers from the submitting thread, and a worker dies with the
    thread that started it (``workers._die_with_parent``: ``PR_SET_PDEATHSIG`` follows
    the thread), so the fits' thread hands its calls over (:meth:`run_fits`)."""

    def __init__(self, workers: int, threads: int) -> None:
        self.workers = workers
        self.pool = worker_pool(workers, threads)
        self.changed = threading.Condition()
        self.busy = 0
        self.fits_submitted = False
        #: Fit calls handed over by the fits' thread: (calls, [futures], submitted event).
        self.fit_requests: collections.deque = collections.deque()

    def submit(self, fn: Callable, *args) -> cf.Future:
        with self.changed:
            self.busy += 1
        future = self.pool.submit(fn, *args)
        future.add_done_callback(self._release)
        return future

    def _release(self, _future) -> None:
        with self.changed:
            self.busy -= 1
            self.changed.notify_all()

    def free(self) -> int:
        with self.changed:
            return self.workers - self.busy

    def run_fits(self, calls: Sequence[tuple[Callable, tuple]]) -> list:
        """The data kind's ``fit_runner`` (called on the fits' thread): every call on a
        worker, ahead of any other task, results in order."""
        futures: list[cf.Future] = []
        submitted = threading.Event()
        with self.changed:
            self.fit_requests.append((list(calls), futures, submitted))
            self.changed.notify_all()
        submitted.wait()
        if not futures:
            raise RuntimeError("the run stopped before its fits started")
        return [f.result() for f in futures]

    def _take_fit_requests(self) -> list:
        with self.changed:
            requests = list(self.fit_requests)
            self.fit_requests.clear()
        return requests

    def close(self) -> None:
        """After the workers were stopped: release a fits' thread still waiting for its
        calls to be submitted (they never will be)."""
        for _, _, submitted in self._take_fit_requests():
            submitted.set()

    def submit_fits(self) -> None:
        """Submit the fit calls handed over so far (scheduler's thread)."""
        for calls, futures, submitted in self._take_fit_requests():
            futures.extend(self.submit(fn, *args) for fn, args in calls)
            with self.changed:
                self.fits_submitted = True
            submitted.set()


def run_while_fitting(fit: Callable, train: Callable, evaluate: Callable, run: Callable, preset,
                      jobs: Sequence, *, base_seed: int, device: str, workers: int | None,
                      finish: Callable) -> bool:
    """Fit the ground truth and run ``jobs`` in one pool of spawned worker processes.

    Returns False, having run nothing, where this does not apply: fewer than two
    workers (``workers.worker_count`` caps ``workers``), or a device other than the CPU
    (measured and checked there only). The caller then fits first and runs the jobs
    with ``LocalBackend.run``.

    Parameters
    ----------
    fit : callable
        ``fit(fit_runner) -> reference_files``: builds the data kind's reference with
        ``fit_runner`` running its fits (called on a thread of this process), and
        returns the fits by value for the jobs (``experiments.reference_files``).
    train, evaluate, run : callable
        Module-level functions (they are pickled to the workers):
        ``train(preset, job, base_seed, device) -> (state, row)``,
        ``evaluate(preset, job, base_seed, device, state, row, *, reference_files) -> row``,
        ``run(preset, job, base_seed, device, *, reference_files) -> row``.
    preset, jobs, base_seed, device
        As for ``Backend.run`` (``jobs`` in the order to start them).
    workers : int or None
        Models at a time, as ``--jobs`` (None: the usable CPUs); capped as in
        ``LocalBackend.run`` (a ``RunWarning`` says so).
    finish : callable
        ``finish(job, row)``, called in this process as each row arrives.

    Stops at the first failing job or fit (its error is raised; a job's as a one-line
    ``ValueError`` naming the model); on any error or interrupt the workers are killed.
    """
    n, note = worker_count(workers, len(jobs), device)
    if n < 2 or device != "cpu":
        return False
    if note:
        warnings.warn(note, RunWarning, stacklevel=2)
    slots = _Slots(n, max(1, usable_cpus() // n))
    fitted: dict = {}

    def fit_thread() -> None:
        try:
            fitted["files"] = fit(slots.run_fits)
        except BaseException as exc:  # re-raised by the scheduler, in this process's main thread
            fitted["error"] = exc
        with slots.changed:
            fitted["done"] = True
            slots.changed.notify_all()

    thread = threading.Thread(target=fit_thread, name="ground-truth fits", daemon=True)
    try:
        thread.start()
        _schedule(slots, fitted, train, evaluate, run, preset, jobs, base_seed, device, finish)
    except BaseException:
        stop_workers(slots.pool)
        slots.close()
        # Wait for the fits' thread (its futures fail at once now; it may be a few seconds
        # into loading data or measuring a fit): an interpreter that exits while a thread
        # is inside torch aborts ("terminate called without an active exception").
        thread.join()
        raise
    slots.pool.shutdown(wait=True)
    thread.join()
    return True


def _schedule(slots: _Slots, fitted: dict, train, evaluate, run, preset, jobs, base_seed, device,
              finish) -> None:
    pending = collections.deque(jobs)
    trained: collections.deque = collections.deque()  # (job, state, row) awaiting the fits
    running: dict[cf.Future, tuple[str, object]] = {}
    while pending or trained or running:
        with slots.changed:
            # The fits take the first workers: nothing else starts before they are handed over.
            while not (slots.fit_requests or slots.fits_submitted or "done" in fitted):
                slots.changed.wait(_POLL_S)
        slots.submit_fits()
        if "error" in fitted:
            raise _fit_error(fitted["error"])
        ready = "files" in fitted
        while slots.free() > 0:
            if ready and trained:
                job, state, row = trained.popleft()
                future = slots.submit(functools.partial(evaluate, reference_files=fitted["files"]),
                                      preset, job, base_seed, device, state, row)
                running[future] = ("row", job)
            elif ready and pending:
                job = pending.popleft()
                future = slots.submit(functools.partial(run, reference_files=fitted["files"]),
                                      preset, job, base_seed, device)
                running[future] = ("row", job)
            elif not ready and "done" not in fitted and pending:
                job = pending.popleft()
                running[slots.submit(train, preset, job, base_seed, device)] = ("trained", job)
            else:
                break
        with slots.changed:
            if not (any(f.done() for f in running) or slots.fit_requests
                    or (ready is False and "done" in fitted)):
                slots.changed.wait(_POLL_S)
        for future in [f for f in running if f.done()]:
            kind, job = running.pop(future)
            try:
                result = future.result()
            except ValueError as exc:
                raise model_error(job, exc) from exc
            except BrokenProcessPool as exc:
                # Every task of a broken pool fails: the dead worker may have been a fit's.
                during = "the ground-truth fits or " if "files" not in fitted else ""
                raise ValueError(f"a worker process died (killed, or out of memory) while running {during}"
                                 f"model {job.id}; finished models are kept, rerun to resume") from exc
            if kind == "trained":
                trained.append((job, *result))
            else:
                finish(job, result)
    while "done" not in fitted:  # no job was left to run: the fits still finish (resume needs them)
        slots.submit_fits()
        with slots.changed:
            if not (slots.fit_requests or "done" in fitted):
                slots.changed.wait(_POLL_S)
    if "error" in fitted:
        raise _fit_error(fitted["error"])


def _fit_error(exc: BaseException) -> BaseException:
    """The error to raise for a failed fit: a worker that died (killed, out of memory)
    as a one-line ``ValueError``, anything else as it is."""
    if isinstance(exc, BrokenProcessPool):
        error = ValueError("a worker process died during the ground-truth fits (killed, or out of "
                           "memory); finished models are kept, rerun to resume")
        error.__cause__ = exc
        return error
    return exc
