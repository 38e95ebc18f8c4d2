"""Models: trainable networks and the exact Bayes-optimal classifier.

- :class:`MLP` — fully connected, smooth (softplus) activation by default.
- :class:`SmallCNN` — two conv blocks for MNIST-sized images.
- :class:`ResNet18` — CIFAR variant (3×3 stem), any number of input channels.
- :class:`PreActResNet18`, :class:`WideResNet` — RobustBench's CIFAR architectures
  (its parameter names), :class:`ImageNetResNet` — torchvision's ResNet-18/50;
  :func:`build_architecture` builds them by ``--arch`` name (``ARCHITECTURES``);
  :class:`Normalized` puts a fixed per-channel input normalisation in front.
- :class:`ConvAutoencoder` — conv encoder/decoder pair (learned tangent spaces).
- :class:`NoiseConditionalDenoiser` — EDM-preconditioned conv denoiser ``D(x, sigma)``.
- :class:`BayesOptimalClassifier` — exact log-posteriors of a known distribution.

Every network is built without touching the global RNG and initialised from its
``seed`` argument (:func:`seeded_init`); ``model.config()`` returns the JSON-able
constructor arguments and :func:`build_model` rebuilds a model from them.
"""

from manifold_lab.models.autoencoder import ConvAutoencoder
from manifold_lab.models.cnn import SmallCNN
from manifold_lab.models.denoiser import NoiseConditionalDenoiser
from manifold_lab.models.init import seeded_init
from manifold_lab.models.mlp import MLP
from manifold_lab.models.normalized import Normalized
from manifold_lab.models.imagenet_resnet import ImageNetResNet
from manifold_lab.models.preact_resnet import PreActResNet18
from manifold_lab.models.registry import ARCHITECTURES, MODEL_CLASSES, build_architecture, build_model
from manifold_lab.models.resnet import ResNet18
from manifold_lab.models.wide_resnet import WideResNet

from manifold_lab.models.bayes import BayesOptimalClassifier  # noqa: F401

__all__ = ["MLP", "SmallCNN", "ResNet18", "ConvAutoencoder", "NoiseConditionalDenoiser",
           "BayesOptimalClassifier", "seeded_init", "build_model", "MODEL_CLASSES", "PreActResNet18",
           "WideResNet", "ImageNetResNet", "ARCHITECTURES", "build_architecture", "Normalized"]
