"""Activation functions by name (shared by the model classes)."""

from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "SMOOTH_ACTIVATIONS", "check_smooth_activation", "make_activation"]

#: Name -> layer class. Softplus, tanh, GELU and SiLU are C^infinity, as
#: Theorem 3.1 needs; ReLU is offered for image models that follow the usual practice.
ACTIVATIONS = {
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "relu": nn.ReLU,
}
SMOOTH_ACTIVATIONS = ("softplus", "tanh", "gelu", "silu")


def make_activation(name: str) -> nn.Module:
    """A fresh activation layer; one-line ``ValueError`` for an unknown name."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def check_smooth_activation(name: str) -> str:
    """``name`` if it is one of ``SMOOTH_ACTIVATIONS`` (models whose Jacobians or
    scores must be differentiable); one-line ``ValueError`` otherwise."""
    if name not in SMOOTH_ACTIVATIONS:
        raise ValueError(f"activation must be smooth, one of {list(SMOOTH_ACTIVATIONS)}, got {name!r}")
    return name
