"""Checkpoints: ``state_dict``s in a torch file plus a JSON side file, written atomically.

Layout for ``path = "run/model.pt"``:

- ``run/model.pt`` — ``{"model": state_dict, "optimizer": state_dict or None}``,
  tensors and plain containers only, loaded with ``torch.load(weights_only=True)``
  (no code is ever unpickled);
- ``run/model.pt.json`` — ``{"format", "model_class", "model_config", "epoch",
  "extra", "weights_sha256", "torch_version"}``.

Each file is written to a temporary file in the same directory and moved into
place with ``os.replace`` (atomic on POSIX and Windows), weights first. The JSON
records the SHA-256 of the weights file, so a pair torn by a crash between the
two replaces, or a damaged file, is detected on load instead of silently mixing
epochs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from manifold_lab._io import atomic_write_bytes
from manifold_lab.models import MODEL_CLASSES, build_model

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint", "config_path",
           "CHECKPOINT_FORMAT"]

#: Version of the on-disk layout; bumped on incompatible changes.
CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, torn or does not fit: one-line message."""


@dataclasses.dataclass
class Checkpoint:
    """A loaded checkpoint (see the module docstring for the layout)."""

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict | None
    epoch: int
    extra: Any
    model_class: str
    model_config: dict | None

    def build_model(self) -> nn.Module:
        """Rebuild the model from its class and config and load the weights."""
        if self.model_class not in MODEL_CLASSES or self.model_config is None:
            raise CheckpointError(
                f"cannot rebuild a {self.model_class} (known: {sorted(MODEL_CLASSES)}, config "
                f"{'missing' if self.model_config is None else 'present'}); build the model yourself "
                "and call model.load_state_dict(checkpoint.model_state)"
            )
        model = build_model(self.model_class, self.model_config)
        load_state(model, self.model_state)
        return model


def config_path(path: str | os.PathLike) -> Path:
    """The JSON side file of the checkpoint at ``path`` (``path + ".json"``)."""
    return Path(str(path) + ".json")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int = 0,
    extra: Any = None,
) -> Path:
    """Write ``model`` (and ``optimizer``) state atomically; return ``path``.

    Parameters
    ----------
    path : path-like
        The weights file; the JSON side file is ``path + ".json"``. Parent
        directories are created.
    model : nn.Module
        Its ``config()`` (if it has one) is stored so :meth:`Checkpoint.build_model`
        can rebuild it.
    optimizer : torch.optim.Optimizer, optional
    epoch : int
        Completed epochs.
    extra : JSON-able, optional
        Anything else to keep (training configuration, history).
    """
    path = Path(path)
    config = model.config() if callable(getattr(model, "config", None)) else None
    meta = {"format": CHECKPOINT_FORMAT, "model_class": type(model).__name__,
            "model_config": config, "epoch": int(epoch), "extra": extra,
            "torch_version": torch.__version__}
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint config/extra must be JSON-able: {exc}") from None
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(),
                "optimizer": None if optimizer is None else optimizer.state_dict()}, buffer)
    data = buffer.getvalue()
    meta["weights_sha256"] = hashlib.sha256(data).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    atomic_write_bytes(config_path(path), (json.dumps(meta, indent=2) + "\n").encode())
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        Missing file, unreadable or torn pair, unknown format (one-line message).
    """
    path = Path(path)
    side = config_path(path)
    if not path.is_file() or not side.is_file():
        raise CheckpointError(f"checkpoint {path} not found (needs both {path.name} and {side.name})")
    try:
        meta = json.loads(side.read_text())
        data = path.read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {side} is unreadable ({type(exc).__name__}); "
                              "delete it and retrain") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {side} has an unknown format "
                              f"(expected format {CHECKPOINT_FORMAT})")
    if hashlib.sha256(data).hexdigest() != meta.get("weights_sha256"):
        raise CheckpointError(f"checkpoint {path} does not match {side.name} (interrupted write "
                              "or damaged file); delete both and retrain")
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        model_state, optimizer_state = payload["model"], payload["optimizer"]
    except Exception as exc:  # any unpickling failure means the same thing to the user
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__})") from None
    return Checkpoint(model_state=model_state, optimizer_state=optimizer_state,
                      epoch=int(meta.get("epoch", 0)), extra=meta.get("extra"),
                      model_class=str(meta.get("model_class")), model_config=meta.get("model_config"))


def load_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state)`` with a one-line ``CheckpointError`` on mismatch."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"checkpoint weights do not fit {type(model).__name__}: "
                              f"{first[1].strip() if len(first) > 1 else first[0]}") from None
