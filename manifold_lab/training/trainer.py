"""The training loop: seeded, resumable, stops on a non-finite loss."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from manifold_lab._modes import eval_mode
from manifold_lab._validation import check_finite, check_positive, check_positive_int
from manifold_lab.training.augment import get_augmentation
from manifold_lab.training.checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint
from manifold_lab.training.objectives.base import Objective

__all__ = ["train", "TrainResult", "NonFiniteLossError", "OPTIMIZERS", "epoch_seed", "step_lr"]

#: Momentum of ``optimizer="sgd"``.
SGD_MOMENTUM = 0.9

#: Optimizer names accepted by :func:`train`.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "adamw": lambda params, lr, wd: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
    "sgd": lambda params, lr, wd: torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=wd),
}

# Independent random streams derived from (seed, epoch): the data order and the
# objective's noise/attack draws, the augmentation's crops and flips.
_PERMUTATION_STREAM = 0
_OBJECTIVE_STREAM = 1
_AUGMENT_STREAM = 2


class NonFiniteLossError(ValueError):
    """Training produced a NaN/inf loss; the message names the epoch and step."""


@dataclasses.dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    model : nn.Module
        The trained model (on ``device``, in eval mode).
    history : list of dict
        One dict per completed epoch (resumed ones included): ``epoch``, ``loss``
        and the objective's logs, each the example-weighted mean over the epoch,
        plus ``time_s`` (wall-clock seconds of that epoch).
    epochs_run : int
        Completed epochs in total (resumed ones included).
    resumed_from : int
        Epochs loaded from the checkpoint (0 for a fresh run).
    """

    model: nn.Module
    history: list[dict]
    epochs_run: int
    resumed_from: int = 0


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A 64-bit seed for one random stream of one epoch (numpy ``SeedSequence`` hashing).

    Deriving every epoch's generators from ``(seed, epoch)`` instead of carrying
    one stream across epochs is what makes a resumed run bit-identical to an
    uninterrupted one: nothing but the weights and the optimizer state carries over.
    """
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def step_lr(lr: float, epoch: int, milestones: Sequence[int], gamma: float) -> float:
    """Learning rate of 0-based ``epoch`` under a step schedule:
    ``lr * gamma ** #{m in milestones : epoch >= m}`` (``torch.optim.lr_scheduler.MultiStepLR``
    stepped once per epoch; e.g. milestones (150, 175) of 200 epochs, the paper's CIFAR schedule)."""
    return lr * gamma ** sum(epoch >= m for m in milestones)


def train(
    model: nn.Module,
    objective: Callable,
    data: tuple[torch.Tensor, torch.Tensor] | Dataset,
    *,
    epochs: int,
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    seed: int = 0,
    weight_decay: float = 0.0,
    lr_milestones: Sequence[int] = (),
    lr_gamma: float = 0.1,
    augment: str | Callable[..., torch.Tensor] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Minimise ``objective`` over ``data`` with mini-batches.

    Parameters
    ----------
    model : nn.Module
        Trained in place (moved to ``device``). Its initialisation is the
        caller's (the models in :mod:`manifold_lab.models` take a ``seed``).
    objective : callable
        ``objective(model, x, y, *, generator) -> (loss, logs)``, e.g. from
        :func:`~manifold_lab.training.make_objective`.
    data : (x, y) or Dataset
        Tensors ``x`` ``[n, *shape]`` and integer labels ``y`` ``[n]`` (the fast
        path: moved to ``device`` once and indexed by a permutation), or a
        ``torch.utils.data.Dataset`` of ``(x_i, y_i)`` pairs (a ``TensorDataset``
        takes the fast path).
    epochs : int
        Total epochs (>= 0). With ``resume`` the run continues up to this number.
    lr : float
        Learning rate (> 0).
    optimizer : {"adam", "adamw", "sgd"}
        ``sgd`` uses momentum ``SGD_MOMENTUM`` (0.9).
    batch_size : int
        Examples per step; the last batch of an epoch may be smaller.
    device : str or torch.device
    seed : int
        >= 0. Epoch ``e`` draws its data order and the objective's randomness
        from generators seeded with :func:`epoch_seed` ``(seed, e, stream)``; so
        on the CPU the same seed (and model init) gives bit-identical weights.
    weight_decay : float
        >= 0, passed to the optimizer.
    lr_milestones : sequence of int
        Numbers of completed epochs (increasing, >= 1) after which the learning rate
        is multiplied by ``lr_gamma`` (:func:`step_lr`; resumed runs included);
        empty (default): constant ``lr``.
    lr_gamma : float
        Factor of each step, in (0, 1].
    augment : str, callable or None
        Applied to every training batch before the objective: a name of
        ``training.augment.AUGMENTATIONS`` (e.g. ``"crop_flip"``) or a callable
        ``(x, generator) -> x``; its generator is seeded per epoch like the others
        (:func:`epoch_seed` stream 2). ``None`` (default): the batches as given.
    checkpoint_path : path-like, optional
        If given, a checkpoint (model, optimizer, history, training configuration)
        is saved there after every epoch (see :mod:`~manifold_lab.training.checkpoint`).
    resume : bool
        If True and a checkpoint exists at ``checkpoint_path``, continue from its
        epoch; the final weights equal those of an uninterrupted run. The
        checkpoint must come from the same configuration (objective, lr,
        optimizer, batch size, seed, weight decay, data size). Without a
        checkpoint the run starts fresh.
    progress : bool
        Show a tqdm progress bar (stderr).

    Returns
    -------
    TrainResult

    Raises
    ------
    NonFiniteLossError
        (a ``ValueError``) on a NaN/inf loss, naming the epoch and step.
    CheckpointError
        (a ``ValueError``) if the checkpoint to resume is unreadable or does not fit.
    """
    check_positive_int("epochs", epochs, minimum=0)
    check_positive("lr", lr)
    check_positive_int("batch_size", batch_size)
    check_positive_int("seed", seed, minimum=0)
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    milestones = tuple(check_positive_int("lr_milestones entry", m) for m in lr_milestones)
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise ValueError(f"lr_milestones must increase, got {list(milestones)}")
    if not (math.isfinite(lr_gamma) and 0 < lr_gamma <= 1):
        raise ValueError(f"lr_gamma must lie in (0, 1], got {lr_gamma}")
    augment_fn = augment if callable(augment) else get_augmentation(augment)
    device = torch.device(device)
    batches = _Batches(data, batch_size, device)
    model.to(device)
    # The library's objectives are classification losses: labels index logits. A
    # plain callable objective (e.g. an autoencoder's reconstruction loss) decides
    # itself what its labels mean.
    n_classes = _n_outputs(model, batches) if isinstance(objective, Objective) else None
    if batches.y is not None and n_classes is not None:
        _check_label_range(batches.y, n_classes)
    opt = OPTIMIZERS[optimizer]([p for p in model.parameters() if p.requires_grad], float(lr),
                                float(weight_decay))
    config = {"objective": _objective_config(objective), "lr": float(lr), "optimizer": optimizer,
              "batch_size": batch_size, "seed": seed, "weight_decay": float(weight_decay),
              "n_train": batches.n}
    # Only set options enter the configuration, so checkpoints written before they
    # existed still resume.
    if milestones:
        config.update(lr_milestones=list(milestones), lr_gamma=float(lr_gamma))
    if augment is not None:
        config["augment"] = augment if isinstance(augment, str) else getattr(augment, "__name__", "callable")
    history: list[dict] = []
    start = 0
    if resume and Path(checkpoint_path).exists():
        start, history = _resume(checkpoint_path, model, opt, config, device)

    bar = tqdm(total=max(epochs - start, 0) * batches.steps, disable=not progress, unit="step",
               desc=f"train {config['objective'].get('name', '')}".strip(), leave=False)
    try:
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            obj_gen = _generator(device, epoch_seed(seed, epoch, _OBJECTIVE_STREAM))
            aug_gen = _generator(device, epoch_seed(seed, epoch, _AUGMENT_STREAM)) if augment_fn else None
            if milestones:
                for group in opt.param_groups:
                    group["lr"] = step_lr(float(lr), epoch, milestones, lr_gamma)
            sums: dict[str, float] = {}
            model.train()
            for step, (xb, yb) in enumerate(batches.epoch(epoch_seed(seed, epoch, _PERMUTATION_STREAM))):
                if batches.y is None and n_classes is not None:
                    _check_label_range(yb, n_classes)
                if augment_fn is not None:
                    xb = augment_fn(xb, aug_gen)
                opt.zero_grad(set_to_none=True)
                loss, logs = objective(model, xb, yb, generator=obj_gen)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"loss became {value} at epoch {epoch + 1}, step {step + 1} "
                        f"({_describe(objective)}); lower the learning rate (lr={lr:g}) or the "
                        "regulariser strength"
                    )
                loss.backward()
                opt.step()
                m = xb.shape[0]
                for key, v in {"loss": value, **logs}.items():
                    sums[key] = sums.get(key, 0.0) + float(v) * m
                bar.update(1)
            record = {"epoch": epoch + 1, **{k: v / batches.n for k, v in sums.items()},
                      "time_s": time.perf_counter() - t0}
            history.append(record)
            bar.set_postfix(epoch=epoch + 1, loss=f"{record['loss']:.4g}")
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, opt, epoch=epoch + 1,
                                extra={"train": config, "history": history})
    finally:
        bar.close()
    model.eval()
    return TrainResult(model=model, history=history, epochs_run=max(epochs, start), resumed_from=start)


class _Batches:
    """Mini-batches in a seeded random order, from tensors (fast path) or a Dataset."""

    def __init__(self, data: Any, batch_size: int, device: torch.device) -> None:
        self.batch_size, self.device = batch_size, device
        self.x = self.y = self.dataset = None
        if isinstance(data, TensorDataset) and len(data.tensors) == 2:
            data = data.tensors
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(f"data must be a pair (x, y) or a Dataset, got a sequence of {len(data)}")
            x, y = data
            if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
                raise ValueError("data x must be a floating-point tensor of shape [n, *shape]")
            if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != x.shape[0] \
                    or y.is_floating_point() or y.is_complex():
                raise ValueError(f"data y must be integer labels of shape [{x.shape[0]}], "
                                 f"got {getattr(y, 'dtype', type(y).__name__)} {list(getattr(y, 'shape', []))}")
            check_finite("data x", x)
            self.x, self.y = x.to(device), y.to(device, torch.int64)
            self.n = x.shape[0]
        elif isinstance(data, Dataset):
            self.dataset = data
            self.n = len(data)
        else:
            raise ValueError(f"data must be a pair (x, y) of tensors or a torch Dataset, "
                             f"got {type(data).__name__}")
        if self.n == 0:
            raise ValueError("data is empty")
        self.steps = -(-self.n // batch_size)

    def first_x(self) -> torch.Tensor:
        """The first input of a Dataset, shape [1, *shape]."""
        return torch.as_tensor(self.dataset[0][0]).unsqueeze(0)

    def epoch(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))
        if self.x is not None:
            order = order.to(self.device)
            for i in range(0, self.n, self.batch_size):
                idx = order[i:i + self.batch_size]
                yield self.x[idx], self.y[idx]
            return
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=order.tolist())
        for xb, yb in loader:
            yield xb.to(self.device), torch.as_tensor(yb).to(self.device, torch.int64)


def _n_outputs(model: nn.Module, batches: "_Batches") -> int:
    """Width of the model's output (its number of classes), from one example in
    eval mode without gradients (no BatchNorm statistics move, no RNG is drawn)."""
    x0 = batches.x[:1] if batches.x is not None else batches.first_x().to(batches.device)
    with eval_mode(model), torch.no_grad():
        out = model(x0)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(f"model must map x [n, *shape] to logits [n, n_classes], got output "
                         f"{list(getattr(out, 'shape', [])) or type(out).__name__}")
    return out.shape[-1]


def _check_label_range(y: torch.Tensor, n_classes: int) -> None:
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1} (the model has {n_classes} outputs), "
                         f"got labels from {low} to {high}")


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _objective_config(objective: Callable) -> dict:
    if callable(getattr(objective, "config", None)):
        return objective.config()
    return {"name": getattr(objective, "__name__", type(objective).__name__)}


def _describe(objective: Callable) -> str:
    return repr(objective) if hasattr(objective, "config") else _objective_config(objective)["name"]


def _resume(path, model, opt, config, device) -> tuple[int, list[dict]]:
    ck = load_checkpoint(path, map_location=device)
    saved = (ck.extra or {}).get("train") if isinstance(ck.extra, dict) else None
    if saved != config:
        diff = sorted(k for k in set(config) | set(saved or {})
                      if (saved or {}).get(k) != config.get(k))
        raise CheckpointError(f"checkpoint {path} comes from a different training configuration "
                              f"(differs in {', '.join(diff)}); delete it or pass resume=False")
    load_state(model, ck.model_state)
    if ck.optimizer_state is None:
        raise CheckpointError(f"checkpoint {path} has no optimizer state; cannot resume exactly")
    opt.load_state_dict(ck.optimizer_state)
    return ck.epoch, list(ck.extra.get("history", []))
