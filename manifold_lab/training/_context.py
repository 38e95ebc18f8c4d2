"""Context managers shared by attacks and the smoothed classifier."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from torch import nn

from manifold_lab._modes import eval_mode

__all__ = ["eval_mode", "frozen_parameters", "unwrap_module"]


def unwrap_module(model: Callable) -> nn.Module | None:
    """``model`` if it is an ``nn.Module``, else ``None`` (plain callables have no mode)."""
    return model if isinstance(model, nn.Module) else None


@contextlib.contextmanager
def frozen_parameters(model: Callable) -> Iterator[None]:
    """``requires_grad=False`` on every parameter inside the block, restored afterwards.

    With frozen parameters autograd builds no parameter branch of the graph: a
    backward pass to the input does only the input-gradient work, and no
    ``.grad`` can be written to a parameter.
    """
    module = unwrap_module(model)
    if module is None:
        yield
        return
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
