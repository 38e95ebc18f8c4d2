"""What both commands of ``python -m manifold_lab.run`` share: exit codes, one-line usage
errors, number and device checks (``run NAME`` in ``run.py``, ``run evaluate`` in
``run_evaluate.py``).

Torch-free at import (``resolve_device`` imports it when called), so that argument
errors, ``--help`` and ``--list`` answer without loading torch.
"""

from __future__ import annotations

import argparse

__all__ = ["PROG", "EXIT_USAGE", "EXIT_FAILED", "MAX_SEED", "UsageError", "OneLineParser", "parse_int",
           "parse_positive", "parse_fraction", "resolve_device"]

PROG = "python -m manifold_lab.run"
EXIT_USAGE = 2
EXIT_FAILED = 1
#: Largest ``--seed``: numpy's and most seed APIs' range (``< 2**32``). Every seed of a
#: run is derived from it by hashing (``experiments.seeds``), so nothing is lost, and
#: ``base seed + seed index`` stays far inside torch's 64-bit seed range.
MAX_SEED = 2 ** 32 - 1


class UsageError(Exception):
    """Bad command-line input; its message is printed as one line."""


class OneLineParser(argparse.ArgumentParser):
    # argparse prints the usage block before its error; we promise one line.
    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(message)


def parse_int(flag: str, text: str, *, minimum: int, maximum: int | None = None) -> int:
    """``text`` as a base-10 integer in ``[minimum, maximum]``; one-line ``UsageError`` else."""
    bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    try:
        value = int(text, 10)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} must be an integer {bounds}, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise UsageError(f"{flag} must be an integer {bounds}, got {text!r}")
    return value


def parse_positive(flag: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag} must be a positive number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise UsageError(f"{flag} must be a positive finite number, got {text!r}")
    return value


def parse_fraction(flag: str, text: str | None) -> float | None:
    """``text`` as a number strictly between 0 and 1 (``None`` passes through)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise UsageError(f"{flag} must be a number between 0 and 1 (exclusive), got {text!r}")
    return value


def resolve_device(text: str, *, backend: str = "local") -> str:
    """Check that ``text`` names a usable torch device; return it normalised.

    With ``backend="ray"`` a ``cuda`` device is not checked here (the models run
    on the cluster's GPU nodes, not necessarily this machine) and must not name an
    index (Ray assigns each task its GPU).
    """
    import torch  # here, not at import: argument errors and --list must not load torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {text!r} is not a torch device; use cpu, cuda, cuda:N or mps") \
            from None
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda" and backend == "ray":
        if device.index is not None:
            raise UsageError(f"--device {text} with --backend ray: Ray assigns each model its "
                             "GPU; use --device cuda")
        return "cuda"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {text}: CUDA is not available on this machine "
                             f"(torch {torch.__version__}); use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UsageError(f"--device {text}: only {count} CUDA device(s) "
                             f"(cuda:0..cuda:{count - 1})")
        return str(device)
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"--device {text}: MPS is not available on this machine; "
                             "use --device cpu")
        return "mps"
    raise UsageError(f"--device {text}: unsupported device type {device.type!r}; "
                     "use cpu, cuda, cuda:N or mps")
