"""What both commands of ``python -m manifold_lab.run`` share: exit codes, one-line usage
errors, number and device checks (``run NAME`` in ``run.py``, ``run evaluate`` in
``run_evaluate.py``)."""

from __future__ import annotations

import argparse

import torch

__all__ = ["PROG", "EXIT_USAGE", "EXIT_FAILED", "UsageError", "OneLineParser", "parse_int",
           "parse_positive", "resolve_device"]

PROG = "python -m manifold_lab.run"
EXIT_USAGE = 2
EXIT_FAILED = 1


class UsageError(Exception):
    """Bad command-line input; its message is printed as one line."""


class OneLineParser(argparse.ArgumentParser):
    # argparse prints the usage block before its error; we promise one line.
    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(message)


def parse_int(flag: str, text: str, *, minimum: int) -> int:
    try:
        value = int(text, 10)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise UsageError(f"{flag} must be an integer >= {minimum}, got {text!r}")
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


def resolve_device(text: str, *, backend: str = "local") -> str:
    """Check that ``text`` names a usable torch device; return it normalised.

    With ``backend="ray"`` a ``cuda`` device is not checked here (the models run
    on the cluster's GPU nodes, not necessarily this machine) and must not name an
    index (Ray assigns each task its GPU).
    """
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
