"""The shared fitting step: an unsupervised loss trained with :func:`manifold_lab.training.train`."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from manifold_lab.training import train

__all__ = ["fit_unsupervised"]

#: Adam learning rate of both fits (the standard default; the EDM preconditioning
#: keeps the denoiser's targets at unit scale, so no per-model tuning is needed).
LEARNING_RATE = 1e-3


def fit_unsupervised(model: nn.Module, loss: Callable, x: torch.Tensor, *, epochs: int, batch_size: int,
                     seed: int, device: str | torch.device, progress: bool, lr: float = LEARNING_RATE,
                     checkpoint_path=None, resume: bool = False, labels: torch.Tensor | None = None
                     ) -> list[dict]:
    """Minimise ``loss(model, x_batch, generator) -> scalar`` over ``x``; return the epoch history.

    Without ``labels`` the trainer (which expects labelled data) gets dummy labels,
    which ``loss`` never sees. With ``labels [n]`` (int64) the loss is called as
    ``loss(model, x_batch, generator, y_batch)``. ``checkpoint_path``/``resume`` are
    the trainer's: a resumed fit ends with the weights of an uninterrupted one.
    """
    def objective(m, xb, yb, *, generator=None):
        return (loss(m, xb, generator) if labels is None else loss(m, xb, generator, yb)), {}

    objective.__name__ = getattr(loss, "__name__", "unsupervised")
    targets = torch.zeros(x.shape[0], dtype=torch.int64) if labels is None else labels
    result = train(model, objective, (x, targets), epochs=epochs, lr=lr, batch_size=batch_size,
                   device=device, seed=seed, progress=progress, checkpoint_path=checkpoint_path,
                   resume=resume)
    return result.history
