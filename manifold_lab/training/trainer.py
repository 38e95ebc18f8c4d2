"""Reproducible, resumable training loop for any objective.

All randomness (initialisation, batch order, the objective's noise and attack
starts) comes from generators seeded from ``seed``, so two runs with one seed
give bit-identical weights on CPU, and a resumed run equals an uninterrupted one
(the generator state is checkpointed with the weights and optimizer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from manifold_lab._validation import check_positive, check_positive_int
from manifold_lab.models import seeded_init
from manifold_lab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["train", "TrainResult", "TrainingDivergedError", "OPTIMIZERS"]

#: Optimizer name -> constructor ``(params, lr, weight_decay)``. SGD uses the
#: common momentum 0.9.
OPTIMIZERS = {
    "adam": lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd),
    "adamw": lambda p, lr, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd),
    "sgd": lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd),
}
#: The training generator is seeded with ``seed + _TRAIN_STREAM_OFFSET`` so its
#: stream differs from the initialisation generator's (seeded with ``seed``).
_TRAIN_STREAM_OFFSET = 2**32


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or inf; the message names epoch and step."""


@dataclass
class TrainResult:
    """Output of :func:`train`.

    Attributes
    ----------
    model : nn.Module
        The trained model (same object as passed in), in eval mode.
    history : list of dict
        One dict per epoch: ``epoch``, ``loss`` and the objective's logs, each
        averaged over the epoch's examples.
    epochs_run : int
        Epochs run in this call (excludes epochs restored from a checkpoint).
    """

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0


def _batches(data, perm: torch.Tensor, batch_size: int, device):
    if isinstance(data, tuple):
        x, y = data
        for start in range(0, perm.numel(), batch_size):
            idx = perm[start:start + batch_size]
            yield x[idx], y[idx]
    else:
        for start in range(0, perm.numel(), batch_size):
            items = [data[int(i)] for i in perm[start:start + batch_size]]
            xb = torch.stack([it[0] for it in items]).to(device)
            yb = torch.as_tensor([int(it[1]) for it in items], device=device)
            yield xb, yb


def train(model: nn.Module, objective, data, *, epochs: int, lr: float = 1e-3,
          optimizer: str = "adam", batch_size: int = 128, device: str | torch.device = "cpu",
          seed: int = 0, weight_decay: float = 0.0, checkpoint_path=None, resume: bool = False,
          progress: bool = True, init: bool = True) -> TrainResult:
    """Minimise ``objective`` over ``data`` with mini-batches.

    Parameters
    ----------
    model : nn.Module
        Trained in place (moved to ``device``).
    objective : callable
        ``objective(model, x, y, *, generator) -> (loss, logs)`` (see
        :mod:`manifold_lab.training.objectives`).
    data : (Tensor [n, ...], Tensor [n]) or torch Dataset
        Tensors are moved to ``device`` once and indexed by a seeded permutation
        each epoch (no DataLoader overhead); a Dataset is indexed item by item
        with the same permutation, items ``(x, y)``.
    epochs : int
        Total number of epochs (including any restored by ``resume``).
    lr, optimizer, weight_decay
        Optimizer settings; ``optimizer`` in :data:`OPTIMIZERS`.
    batch_size : int, default 128
        The last batch of an epoch may be smaller.
    device : str or torch.device, default "cpu"
    seed : int, default 0
        Seeds the initialisation (if ``init``) and every random draw.
    checkpoint_path : path-like, optional
        Save a checkpoint (weights, optimizer, generator state, history) after
        every epoch.
    resume : bool, default False
        Continue from ``checkpoint_path`` if it exists (it must come from a run
        with the same objective, optimizer, lr, batch size, weight decay and
        seed); the result equals an uninterrupted run.
    progress : bool, default True
        tqdm progress bar over epochs.
    init : bool, default True
        Re-initialise Linear/Conv/norm layers from ``seed``
        (:func:`manifold_lab.models.seeded_init`); ``False`` keeps the
        model's weights (fine-tuning).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDivergedError
        On a NaN/inf loss (names epoch and step; lower ``lr`` or the strength).
    CheckpointError
        If ``resume`` finds a checkpoint of another run or an unreadable one.
    """
    check_positive_int("epochs", epochs, minimum=0)
    check_positive_int("batch_size", batch_size)
    check_positive("lr", lr)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    device = torch.device(device)
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError("data must be a tuple (x, y) of tensors or a torch Dataset")
        x, y = data
        if x.shape[:1] != y.shape[:1] or x.shape[0] == 0:
            raise ValueError(f"x [n, ...] and y [n] must share n > 0; got {list(x.shape)}, {list(y.shape)}")
        data = (x.to(device), y.to(device))
    n = len(data[0]) if isinstance(data, tuple) else len(data)

    if init:
        seeded_init(model, seed)
    model.to(device)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr, weight_decay)
    gen = torch.Generator(device=device).manual_seed(seed + _TRAIN_STREAM_OFFSET)
    objective_config = objective.config() if hasattr(objective, "config") else repr(objective)
    run_config = {"objective": objective_config, "optimizer": optimizer, "lr": lr,
                  "batch_size": batch_size, "weight_decay": weight_decay, "seed": seed}

    history: list[dict] = []
    start_epoch = 0
    if resume and checkpoint_path is not None:
        from pathlib import Path
        if Path(checkpoint_path).exists():
            ckpt = load_checkpoint(checkpoint_path, map_location=device)
            stored = ckpt["config"].get("config", {})
            if stored != run_config:
                raise CheckpointError(
                    f"checkpoint {checkpoint_path} is from another run ({stored}); "
                    "use a new checkpoint_path or resume=False")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            gen.set_state(ckpt["extra"]["generator_state"].cpu())
            history = list(ckpt["extra"]["history"])
            start_epoch = int(ckpt["epoch"])

    model.train()
    epochs_run = 0
    bar = tqdm(range(start_epoch, epochs), desc="train", disable=not progress, leave=False)
    for epoch in bar:
        perm = torch.randperm(n, generator=gen, device=device)
        sums: dict[str, float] = {}
        for step, (xb, yb) in enumerate(_batches(data, perm, batch_size, device)):
            opt.zero_grad(set_to_none=True)
            loss, logs = objective(model, xb, yb, generator=gen)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"loss is {value} at epoch {epoch + 1}, step {step + 1}; "
                    f"lower lr (now {lr}) or the objective strength ({objective_config})")
            loss.backward()
            opt.step()
            b = yb.shape[0]
            sums["loss"] = sums.get("loss", 0.0) + value * b
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
        record = {"epoch": epoch + 1, **{k: v / n for k, v in sums.items()}}
        history.append(record)
        epochs_run += 1
        bar.set_postfix(loss=f"{record['loss']:.4g}")
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, opt, epoch=epoch + 1,
                            extra={"generator_state": gen.get_state(), "history": history},
                            config=run_config)
    bar.close()
    model.eval()
    return TrainResult(model=model, history=history, epochs_run=epochs_run)
