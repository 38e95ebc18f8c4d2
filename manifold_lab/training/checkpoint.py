"""Checkpoints: tensors in a ``torch.save`` file, config in a JSON side file.

``save_checkpoint(path, ...)`` writes ``path`` (model and optimizer
``state_dict`` s, epoch, ``extra``) and ``path + ".json"`` (model class name,
``model.config()``, epoch, JSON-able extras), each atomically (temp file in the
same directory + ``os.replace``), so a crash never leaves a half-written file.
``load_checkpoint`` uses ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "config_path"]

#: Bumped when the stored layout changes.
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or inconsistent (one-line message)."""


def config_path(path: str | os.PathLike) -> Path:
    """The JSON side file of checkpoint ``path``: ``path + ".json"``."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, epoch: int = 0,
                    extra: dict | None = None, config: dict | None = None) -> Path:
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : path-like
        Tensor file; the JSON side file is ``path + ".json"``.
    model : nn.Module
        Its ``state_dict`` is stored; ``model.config()`` (if it exists) goes to JSON.
    optimizer : Optimizer, optional
        Its ``state_dict`` is stored.
    epoch : int
        Number of finished epochs.
    extra : dict, optional
        Anything ``torch.load(weights_only=True)`` can read back: tensors,
        numbers, strings, lists and dicts of these (e.g. a generator state).
    config : dict, optional
        JSON-able run description stored in the side file (e.g. objective config).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "epoch": int(epoch),
        "extra": {} if extra is None else extra,
    }
    side = {
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "model_config": model.config() if hasattr(model, "config") else None,
        "epoch": int(epoch),
        "config": {} if config is None else config,
    }
    text = json.dumps(side, indent=2, sort_keys=True).encode()
    _atomic_write(path, lambda f: torch.save(payload, f))
    _atomic_write(config_path(path), lambda f: f.write(text))
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    dict
        Keys ``model`` (state_dict), ``optimizer`` (state_dict or None),
        ``epoch``, ``extra`` and ``config`` (the parsed JSON side file).

    Raises
    ------
    CheckpointError
        If either file is missing, unreadable or of another format version.
    """
    path = Path(path)
    side_path = config_path(path)
    for p in (path, side_path):
        if not p.is_file():
            raise CheckpointError(f"checkpoint file {p} does not exist; train without resume or fix the path")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types on corrupt files
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is unreadable ({msg}); delete it and retrain") from None
    try:
        side = json.loads(side_path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint config {side_path} is unreadable ({err}); delete it and retrain") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a format-{FORMAT_VERSION} manifold_lab checkpoint")
    return {"model": payload["model"], "optimizer": payload["optimizer"],
            "epoch": payload["epoch"], "extra": payload["extra"], "config": side}
