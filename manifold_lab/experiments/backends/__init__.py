"""Where the models of a sweep run: ``local`` worker processes or ``ray`` tasks.

A backend takes the jobs still to run and calls ``finish(job, row)`` in the
calling process as each model's row arrives; the caller (``sweep.run_sweep``)
writes the files, so workers never touch the run directory and need no shared
filesystem. Every backend runs the same ``run_job`` with the same seeds, so the
rows do not depend on the backend.

- ``local`` (``backends.local``): this process for one job at a time, else a pool
  of spawned worker processes that exit when this process dies; with fitted ground
  truth, the fits run in the same pool and models train beside them
  (``backends.overlap``);
- ``ray`` (``backends.ray``): one Ray task per model on a local Ray instance or a
  cluster, with its CPU/GPU request, bounded retries of lost or failed tasks and
  cancellation on Ctrl-C. Ray is an optional extra (``pip install -e ".[ray]"``).
"""

from __future__ import annotations

from manifold_lab.experiments.backends.base import BACKENDS, Backend, BackendUnavailable, model_error

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "get_backend", "model_error"]


def get_backend(backend: "Backend | str") -> "Backend":
    """The backend named ``backend`` with default options (or ``backend`` itself)."""
    if not isinstance(backend, str):
        return backend
    if backend == "local":
        from manifold_lab.experiments.backends.local import LocalBackend

        return LocalBackend()
    if backend == "ray":
        from manifold_lab.experiments.backends.ray import RayBackend

        return RayBackend()
    raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
