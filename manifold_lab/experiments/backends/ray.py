"""The Ray backend: one Ray task per model, on a local Ray instance or a cluster.

Each task requests ``cpus_per_model`` CPUs (and uses that many torch threads)
and, with ``--device cuda``, ``gpus_per_model`` GPUs (a fraction packs several
models on one GPU; Ray makes the assigned GPU the task's ``cuda`` device). Tasks
return their rows to the driver, which writes every file, so workers need no
shared filesystem: only the package installed and the data readable at the same
path. Rows are the same as with the local backend (same ``run_job``, same seeds).

Failures: a task whose worker or node is lost, or that raises a transient error
(``RETRIED_EXCEPTIONS``), is retried up to ``max_retries`` times; deterministic
errors (``ValueError``: a diverged training, bad input) are not. A model that
still fails is reported by id with its error after the other models have
finished (and been written), as one ``ValueError`` line. Ctrl-C (or SIGTERM in
the command line) cancels the outstanding tasks; finished models are kept.

Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable, Sequence

from manifold_lab.experiments.backends.base import BackendUnavailable, model_error

__all__ = ["INSTALL_HINT", "MAX_RETRIES", "RETRIED_EXCEPTIONS", "RayBackend", "import_ray"]

INSTALL_HINT = 'pip install -c constraints-cpu.txt -e ".[ray]"'

#: Retries of a lost or transiently failed task before its model is reported.
MAX_RETRIES = 3

#: Exceptions worth retrying: the same job can succeed elsewhere or later (CUDA
#: out-of-memory is a RuntimeError; a flaky network filesystem an OSError).
RETRIED_EXCEPTIONS = (RuntimeError, OSError, MemoryError)

#: Signals whose Python handlers are kept across ``ray.init``.
_KEPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Seconds ``ray.wait`` blocks before Python gets to handle Ctrl-C/SIGTERM.
_POLL_S = 0.5


def _restore(handlers: dict) -> None:
    # ray.init installs a C-level SIGTERM handler that dumps a stack trace and kills
    # the process: put back the caller's own (the command line turns SIGTERM into a
    # clean stop that cancels the tasks and keeps finished models).
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)


def import_ray():
    """The ``ray`` module, or ``BackendUnavailable`` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailable(
            f"--backend ray needs the Ray package ({exc.msg}); install it with {INSTALL_HINT}"
        ) from None
    return ray


def _run_model(fn: Callable, preset, job, base_seed: int, device: str, threads: int) -> dict:
    # Runs inside a Ray worker (a process Ray reuses across tasks).
    import torch

    from manifold_lab._allocator import keep_freed_memory

    torch.set_num_threads(threads)
    keep_freed_memory()  # manifold_lab._allocator: freed memory is reused, not faulted in again
    return fn(preset, job, base_seed, device)


def _describe(ray, exc: BaseException) -> BaseException | str:
    """The user-facing cause of a failed task."""
    if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None:
        cause = exc.cause
        if isinstance(cause, ValueError):
            return cause
        return f"{type(cause).__name__}: {str(cause).strip() or 'no message'} (after retries)"
    text = f"{type(exc).__name__}: {str(exc).strip()}"
    if "No module named" in text:
        text += " (every Ray node needs manifold_lab installed, see the README)"
    return text


class RayBackend:
    """Models as Ray tasks.

    Parameters
    ----------
    address : str, optional
        Ray cluster address (``auto``: the cluster this machine belongs to, e.g.
        after ``ray start``; ``HOST:6379``); None starts a local Ray instance with
        this machine's usable CPUs, shut down when the sweep ends. An already
        initialised Ray (``ray.init`` by the caller) is used as it is.
    gpus_per_model : float, optional
        GPUs each task requests with a ``cuda`` device (default 1).
    cpus_per_model : int
        CPUs each task requests and torch threads it uses.
    max_retries : int
        Retries of a lost or transiently failed task.
    stop_requested : callable, optional
        ``() -> bool``, polled after every wait for a task (at least every
        ``_POLL_S`` seconds): once it returns True the outstanding tasks are cancelled
        and ``KeyboardInterrupt`` is raised. The command line passes "a SIGTERM has
        arrived", so a SIGTERM whose exception a Ray wait swallowed still stops the run.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, gpus_per_model: float | None = None,
                 cpus_per_model: int = 1, max_retries: int = MAX_RETRIES,
                 stop_requested: Callable[[], bool] | None = None):
        if gpus_per_model is not None and not 0 < gpus_per_model:
            raise ValueError(f"gpus_per_model must be > 0, got {gpus_per_model!r}")
        if cpus_per_model < 1:
            raise ValueError(f"cpus_per_model must be >= 1, got {cpus_per_model!r}")
        self.address = address
        self.gpus_per_model = 1.0 if gpus_per_model is None else float(gpus_per_model)
        self.cpus_per_model = int(cpus_per_model)
        self.max_retries = int(max_retries)
        self.stop_requested = stop_requested
        self._started = False  # connect() started Ray: run() shuts it down at its end

    def connect(self) -> None:
        """Start or join Ray now (``BackendUnavailable`` if it cannot), so that a
        cluster that cannot be reached is found before a run writes anything; ``run``
        then uses this connection and shuts it down when it ends."""
        self._started = self._connect(import_ray()) or self._started

    def _connect(self, ray) -> bool:
        """Initialise Ray unless it is; return whether this call started it."""
        if ray.is_initialized():
            return False
        # Worker output goes to Ray's log files (/tmp/ray/session_latest/logs), not
        # into the progress bar; failures come back to the driver as errors.
        options = dict(include_dashboard=False, logging_level=logging.WARNING,
                       log_to_driver=False)
        handlers = {sig: signal.getsignal(sig) for sig in _KEPT_SIGNALS}
        try:
            if self.address is None:
                from manifold_lab.experiments.backends.workers import usable_cpus

                ray.init(num_cpus=usable_cpus(), **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray instance" if self.address is None else self.address
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailable(f"cannot start or reach Ray at {where}: {first}") from None
        finally:
            _restore(handlers)
        return True

    def _options(self, ray, device: str) -> dict:
        resources = ray.cluster_resources()
        options = dict(num_cpus=self.cpus_per_model, num_gpus=0, max_retries=self.max_retries,
                       retry_exceptions=list(RETRIED_EXCEPTIONS))
        if device.startswith("cuda"):
            if device != "cuda":
                raise ValueError(f"--device {device} with --backend ray: Ray assigns each task "
                                 "its GPU; use --device cuda")
            if resources.get("GPU", 0) < self.gpus_per_model:
                raise ValueError(f"the Ray cluster has {resources.get('GPU', 0):g} GPU(s); each "
                                 f"model needs {self.gpus_per_model:g} with --device cuda")
            options["num_gpus"] = self.gpus_per_model
        if resources.get("CPU", 0) < self.cpus_per_model:
            raise ValueError(f"the Ray cluster has {resources.get('CPU', 0):g} CPU(s); each model "
                             f"needs {self.cpus_per_model}")
        return options

    def run(self, fn: Callable, preset, jobs: Sequence, *, base_seed: int, device: str,
            workers: int | None, finish: Callable) -> None:
        """See ``backends.Backend.run``; ``workers`` caps the tasks in flight."""
        ray = import_ray()
        started = self._connect(ray) or self._started
        self._started = False
        try:
            self._run(ray, fn, preset, jobs, base_seed=base_seed, device=device,
                      limit=workers or len(jobs), finish=finish)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, fn, preset, jobs, *, base_seed, device, limit, finish) -> None:
        options = self._options(ray, device)
        task = ray.remote(_run_model)
        queue = list(jobs)
        running: dict = {}
        failures: list[str] = []
        try:
            while queue or running:
                while queue and len(running) < limit:
                    job = queue.pop(0)
                    ref = task.options(name=f"model {job.id}", **options).remote(
                        fn, preset, job, base_seed, device, self.cpus_per_model)
                    running[ref] = job
                done, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_S)
                if self.stop_requested is not None and self.stop_requested():
                    raise KeyboardInterrupt("stop requested while waiting for Ray tasks")
                for ref in done:
                    job = running.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        failures.append(str(model_error(job, _describe(ray, exc))))
                        continue
                    finish(job, row)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        if failures:
            raise ValueError(f"{len(failures)} model(s) failed (the others are kept; rerun to "
                             f"retry these): " + "; ".join(failures))
