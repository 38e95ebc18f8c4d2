"""Activation functions by name (shared by the model classes)."""

from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "SMOOTH_ACTIVATIONS", "make_activation"]

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
