"""What every backend shares: the ``Backend`` protocol and its one-line errors.

Kept apart from ``backends/__init__.py`` (which picks a backend by name and so
imports the backends) so that the backends import it without a cycle.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "model_error"]

BACKENDS = ("local", "ray")


class BackendUnavailable(ValueError):
    """The chosen backend cannot run here (e.g. Ray is not installed)."""


class Backend(Protocol):
    """Runs jobs; calls ``finish(job, row)`` in the caller's process for each row."""

    name: str

    def run(self, fn: Callable, preset, jobs: Sequence, *, base_seed: int, device: str,
            workers: int | None, finish: Callable[[object, dict], None]) -> None:
        """Run ``fn(preset, job, base_seed, device)`` for every job of ``jobs``.

        ``workers``: at most this many models at a time (None: as many as the
        backend's resources allow).
        """

    # Optional: a backend may also define
    #     run_while_fitting(fit, train, evaluate, run, preset, jobs, *, base_seed, device,
    #                       workers, finish) -> bool
    # which fits a data kind's ground truth and runs the jobs together, models training
    # while the fits run, and returns False, having run nothing, where it cannot; the
    # sweep then fits first and calls ``run``. The local backend has it
    # (``backends.overlap``); Ray does not.


def model_error(job, problem: BaseException | str) -> ValueError:
    """A one-line ``ValueError`` naming the model a failure came from."""
    text = str(problem).strip().splitlines()
    return ValueError(f"model {job.id}: {text[0] if text else type(problem).__name__}")
