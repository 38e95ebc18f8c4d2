"""Module-mode context managers shared by every layer that runs a model for a measurement.

Attacks (``training``), input gradients and robustness probes (``metrics``) must
see the model in eval mode and leave it exactly as they found it; this module is
the one place that does so, and like ``_validation`` it imports only torch.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: Callable) -> Iterator[None]:
    """Eval mode inside the block; every submodule's own flag is restored afterwards.

    Restoring per submodule keeps deliberately mixed modes (a frozen BatchNorm
    inside a training network) intact. Plain callables (no ``nn.Module``) pass
    through unchanged.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag
