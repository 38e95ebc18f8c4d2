"""Rebuild a model from its class name and ``config()`` (used by checkpoints)."""

from __future__ import annotations

from torch import nn

from manifold_lab.models.autoencoder import ConvAutoencoder
from manifold_lab.models.cnn import SmallCNN
from manifold_lab.models.denoiser import NoiseConditionalDenoiser
from manifold_lab.models.mlp import MLP
from manifold_lab.models.resnet import ResNet18

__all__ = ["MODEL_CLASSES", "build_model"]

#: Classes that :func:`build_model` (and ``training.load_checkpoint``) can rebuild.
MODEL_CLASSES: dict[str, type[nn.Module]] = {"MLP": MLP, "SmallCNN": SmallCNN, "ResNet18": ResNet18,
                                             "ConvAutoencoder": ConvAutoencoder,
                                             "NoiseConditionalDenoiser": NoiseConditionalDenoiser}


def build_model(name: str, config: dict) -> nn.Module:
    """``MODEL_CLASSES[name](**config)``, with one-line errors for unknown names or bad configs."""
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {name!r}; known: {sorted(MODEL_CLASSES)}")
    if not isinstance(config, dict):
        raise ValueError(f"model config must be a dict, got {type(config).__name__}")
    try:
        return MODEL_CLASSES[name](**config)
    except TypeError as exc:
        raise ValueError(f"config {config} does not fit {name}: {exc}") from None
