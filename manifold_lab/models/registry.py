"""Rebuild a model from its class name and ``config()`` (used by checkpoints), and build named architectures.

``ARCHITECTURES`` maps the names users pass for their own checkpoints (``--arch``)
to constructors whose parameter names match the model zoo the weights come from:

- ``resnet18`` — the in-project CIFAR ResNet-18 (:class:`ResNet18`, default arguments);
- ``preact_resnet18``, ``wideresnet28_10``, ``wideresnet34_10``, ``wideresnet`` (any
  depth and width) — RobustBench's CIFAR architectures (their variants, e.g.
  ``sub_block1``, are read from a checkpoint's keys: ``models.zoo_layout``);
- ``resnet18_imagenet``, ``resnet50`` — torchvision's ImageNet ResNets (also
  MadryLab ``robustness`` and RobustBench's ImageNet ResNets).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from manifold_lab.models.autoencoder import ConvAutoencoder
from manifold_lab.models.cnn import SmallCNN
from manifold_lab.models.denoiser import NoiseConditionalDenoiser
from manifold_lab.models.imagenet_resnet import ImageNetResNet, resnet18_imagenet, resnet50
from manifold_lab.models.mlp import MLP
from manifold_lab.models.preact_resnet import PreActResNet18
from manifold_lab.models.resnet import ResNet18
from manifold_lab.models.wide_resnet import WideResNet

__all__ = ["MODEL_CLASSES", "build_model", "ARCHITECTURES", "build_architecture"]

#: Classes that :func:`build_model` (and ``training.load_checkpoint``) can rebuild.
MODEL_CLASSES: dict[str, type[nn.Module]] = {"MLP": MLP, "SmallCNN": SmallCNN, "ResNet18": ResNet18,
                                             "ConvAutoencoder": ConvAutoencoder,
                                             "NoiseConditionalDenoiser": NoiseConditionalDenoiser,
                                             "PreActResNet18": PreActResNet18, "WideResNet": WideResNet,
                                             "ImageNetResNet": ImageNetResNet}

#: ``name -> (constructor(n_classes, seed=..., **layout options), default number of classes)``.
ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], int]] = {
    "resnet18": (lambda n_classes, seed=0: ResNet18(3, n_classes, seed=seed), 10),
    "preact_resnet18": (lambda n_classes, seed=0, variant="v2": PreActResNet18(3, n_classes, seed=seed,
                                                                                 variant=variant), 10),
    "wideresnet28_10": (lambda n_classes, seed=0, sub_block1=False: WideResNet(
        3, n_classes, depth=28, widen_factor=10, seed=seed, sub_block1=sub_block1), 10),
    "wideresnet34_10": (lambda n_classes, seed=0, sub_block1=False: WideResNet(
        3, n_classes, depth=34, widen_factor=10, seed=seed, sub_block1=sub_block1), 10),
    "wideresnet": (lambda n_classes, seed=0, depth=28, widen_factor=10, sub_block1=False: WideResNet(
        3, n_classes, depth=depth, widen_factor=widen_factor, seed=seed, sub_block1=sub_block1), 10),
    "resnet18_imagenet": (resnet18_imagenet, 1000),
    "resnet50": (resnet50, 1000),
}


def build_architecture(name: str, n_classes: int | None = None, *, seed: int = 0, **options) -> nn.Module:
    """A randomly initialised ``ARCHITECTURES[name]`` (``n_classes`` defaults to its dataset's).

    ``options`` are the architecture's layout options (``models.zoo_layout.layout_options``).
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    factory, default_classes = ARCHITECTURES[name]
    return factory(default_classes if n_classes is None else n_classes, seed=seed, **options)


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
