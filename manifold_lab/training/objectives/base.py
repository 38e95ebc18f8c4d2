"""The objective interface: ``objective(model, x, y, *, generator=None) -> (loss, logs)``."""

from __future__ import annotations

import abc
import math
from typing import Callable, ClassVar

import torch

__all__ = ["Objective", "Logs", "accuracy", "check_weight"]

Logs = dict[str, float]


class Objective(abc.ABC):
    """A training loss: callable on a batch, named, with a JSON-able config.

    Subclasses set the class attribute ``name`` and implement ``__call__`` and
    ``config``. ``config()`` holds the constructor arguments plus ``"name"``, so
    ``objective_from_config(obj.config())`` rebuilds an equal objective.

    A class that is a sweepable regulariser also declares (and is registered
    with ``registry.register_objective``; see ``docs/extending.md``):

    - ``regularizer``: its name in sweeps and ``make_objective`` (``"none"`` is
      plain cross-entropy);
    - ``strength_parameter``: the constructor argument the sweep's single
      ``strength`` sets (``None``: the strength is ignored);
    - ``strength_meaning``: what the strength means, for tables and results.json;
    - ``relative_cost``: cost of a training epoch relative to cross-entropy (the
      sweep starts the most expensive jobs first, so parallel workers finish together);
    - ``default_options``: constructor arguments ``make_objective`` passes unless
      the caller (or a preset's sweep entry) overrides them.
    """

    name: str = ""
    regularizer: ClassVar[str | None] = None
    strength_parameter: ClassVar[str | None] = None
    strength_meaning: ClassVar[str] = ""
    relative_cost: ClassVar[float] = 1.0
    default_options: ClassVar[dict] = {}

    @abc.abstractmethod
    def __call__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, Logs]:
        """Loss on the batch ``x`` ``[n, *shape]``, ``y`` ``[n]``.

        Returns
        -------
        loss : Tensor, shape []
            Differentiable scalar to minimise (mean over examples).
        logs : dict[str, float]
            Components of the loss for the training history.
        """

    def config(self) -> dict:
        """JSON-able ``{"name": ..., **constructor arguments}``."""
        return {"name": self.name}

    def lr_factor(self) -> float:
        """Factor on the learning rate that a sweep trains this objective with (default 1;
        e.g. :class:`~manifold_lab.training.GradientNorm` with ``lr_weight``)."""
        return 1.0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config() == self.config()

    def __hash__(self) -> int:
        return hash(repr(self))


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit is ``y``."""
    return float((logits.argmax(dim=-1) == y).float().mean())


def check_weight(name: str, value: float) -> float:
    """A finite float >= 0, else a one-line ``ValueError``.

    Booleans and strings are refused although ``float()`` accepts them: ``True``
    or ``"0.1"`` as a strength is a caller's mistake, not a number.
    """
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value
