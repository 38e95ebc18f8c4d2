"""Seeded, global-state-free parameter initialisation.

PyTorch layers initialise themselves from the global RNG, so two models built in
one process differ and building a model changes the global stream. Here every
model is built on the ``meta`` device (no values, no RNG use) and then filled by
:func:`seeded_init` from its own ``torch.Generator``: same seed, same weights, in
any process, whatever ran before.

The schemes reproduce PyTorch's defaults, so a seeded model is distributed
exactly like a default-initialised one:

- ``Linear``/``Conv*``: ``W ~ U(-b, b)`` with ``b = 1/sqrt(fan_in)`` (kaiming
  uniform with ``a = sqrt(5)``), bias ``~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``;
- normalisation layers (BatchNorm, LayerNorm, GroupNorm): weight 1, bias 0,
  running statistics reset.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from manifold_lab._validation import check_positive_int

__all__ = ["seeded_init", "materialize"]

#: PyTorch's default ``a`` of the kaiming-uniform init of Linear/Conv weights,
#: which makes the weight bound exactly ``1/sqrt(fan_in)``.
_KAIMING_A = math.sqrt(5.0)

_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def seeded_init(module: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every parameter of ``module`` from ``torch.Generator().manual_seed(seed)``.

    Parameters
    ----------
    module : nn.Module
        Built from ``Linear``, ``Conv1d/2d/3d``, BatchNorm, LayerNorm, GroupNorm
        and parameter-free layers (activations, pooling, containers).
    seed : int
        >= 0. Modules are visited in ``module.modules()`` order, so the weights
        are a function of the architecture and the seed only.

    Returns
    -------
    nn.Module
        ``module`` itself, re-initialised in place (on its current device and
        dtype; the draws are made in float32 on the CPU and copied, so the
        weights do not depend on the device).

    Raises
    ------
    ValueError
        If a submodule owns parameters of a kind this function does not know.
    """
    check_positive_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    for name, sub in module.named_modules():
        own = list(sub.parameters(recurse=False))
        if isinstance(sub, _WEIGHTED):
            weight = torch.empty(sub.weight.shape)
            nn.init.kaiming_uniform_(weight, a=_KAIMING_A, generator=gen)
            with torch.no_grad():
                sub.weight.copy_(weight)
                if sub.bias is not None:
                    fan_in = sub.weight[0].numel()
                    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    bias = torch.empty(sub.bias.shape).uniform_(-bound, bound, generator=gen)
                    sub.bias.copy_(bias)
        elif isinstance(sub, _NORMS):
            sub.reset_parameters()
        elif own:
            raise ValueError(
                f"seeded_init does not know how to initialise {type(sub).__name__} "
                f"(submodule {name!r}); initialise it yourself or use Linear/Conv/norm layers"
            )
    return module


def materialize(module: nn.Module, seed: int) -> nn.Module:
    """Allocate a ``meta``-built ``module`` on the CPU and fill it with :func:`seeded_init`."""
    return seeded_init(module.to_empty(device="cpu"), seed)
