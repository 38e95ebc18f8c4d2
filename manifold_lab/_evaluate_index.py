"""What ``python -m manifold_lab.run evaluate`` checks its arguments against, torch-free.

``run evaluate --help`` and its argument errors (an unknown ``--arch``, a bad number, a
missing option) answer from this module, as ``run --help`` answers from
``_preset_index``, so they do not import torch or matplotlib. The data that is plain
data lives here and is re-exported where it is used (``models.NORMALIZATIONS``,
``training.zoo_entries``, ``experiments.robust_accuracy``, ``experiments.checkpoint_data``);
``ARCHITECTURE_CLASSES`` and ``ATTACK_NAMES`` repeat names whose values need torch
(``models.ARCHITECTURES``, ``experiments.robust_accuracy.ATTACKS``), and
``tests/test_cli_first_contact.py`` checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATASETS", "NORMALIZATIONS", "ARCHITECTURE_CLASSES", "ATTACK_NAMES", "DEFAULT_EPS", "DEFAULT_STEPS",
           "AttackSpec", "ZooEntry", "ZOO_ENTRIES", "zoo_entry"]

#: Data sets ``run evaluate`` reads (``experiments.checkpoint_data``).
DATASETS = ("cifar10", "imagenet")

#: Named ``(mean, std)`` per channel (RGB) of ``models.Normalized`` (see ``models.normalized``).
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}

#: ``models.ARCHITECTURES`` names -> their default number of classes (the constructors need torch).
ARCHITECTURE_CLASSES: dict[str, int] = {
    "resnet18": 10, "preact_resnet18": 10, "wideresnet28_10": 10, "wideresnet34_10": 10, "wideresnet": 10,
    "resnet18_imagenet": 1000, "resnet50": 1000,
}

#: ``experiments.robust_accuracy.ATTACKS`` names (the attacks need torch).
ATTACK_NAMES = ("pgd_linf", "pgd_l2")
#: ``(dataset, attack) -> eps``: RobustBench's threat models.
DEFAULT_EPS = {("cifar10", "pgd_linf"): 8 / 255, ("cifar10", "pgd_l2"): 0.5,
               ("imagenet", "pgd_linf"): 4 / 255, ("imagenet", "pgd_l2"): 3.0}
DEFAULT_STEPS = 10


@dataclass(frozen=True)
class AttackSpec:
    """``name`` (a key of ``ATTACKS``), radius ``eps`` and ``steps``; step size ``2.5 eps / steps``."""

    name: str
    eps: float
    steps: int = DEFAULT_STEPS

    def __post_init__(self):
        if self.name not in ATTACK_NAMES:
            raise ValueError(f"unknown attack {self.name!r}; choose one of {', '.join(ATTACK_NAMES)}")
        if not (self.eps >= 0) or self.steps < 1:
            raise ValueError(f"attack needs eps >= 0 and steps >= 1, got eps={self.eps}, steps={self.steps}")


@dataclass(frozen=True)
class ZooEntry:
    """One named checkpoint family (see ``training.zoo_entries``).

    Attributes
    ----------
    arch : str
        ``models.ARCHITECTURES`` name (layout options still come from the keys).
    normalization : str or None
        ``models.NORMALIZATIONS`` name applied in front, or ``None``: the network
        takes [0, 1] pixels as they are (buffers in the file are still used).
    dataset : str
        ``"cifar10"`` or ``"imagenet"``.
    """

    arch: str
    normalization: str | None
    dataset: str


def _cifar(arch: str, normalization: str | None = None) -> ZooEntry:
    return ZooEntry(arch, normalization, "cifar10")


def _imagenet(arch: str) -> ZooEntry:
    return ZooEntry(arch, "imagenet", "imagenet")


_WRN28 = ("Standard", "Carmon2019Unlabeled", "Sehwag2020Hydra", "Wang2020Improving", "Wu2020Adversarial_extra",
          "Zhang2020Geometry", "Sridhar2021Robust")
_WRN34 = ("Zhang2019Theoretically", "Huang2020Self", "Zhang2019You", "Zhang2020Attacks", "Sitawarin2020Improving",
          "Cui2020Learnable_34_10", "Wu2020Adversarial", "Addepalli2021Towards_WRN34", "Sehwag2021Proxy",
          "Chen2021LTD_WRN34_10", "Addepalli2022Efficient_WRN_34_10")

#: ``"<dataset>/<RobustBench id>" -> ZooEntry`` (CIFAR-10 Linf/L2 and ImageNet Linf ids of RobustBench 1.1.1).
ZOO_ENTRIES: dict[str, ZooEntry] = {
    **{f"cifar10/{name}": _cifar("wideresnet28_10") for name in _WRN28},
    **{f"cifar10/{name}": _cifar("wideresnet34_10") for name in _WRN34},
    "cifar10/Hendrycks2019Using": _cifar("wideresnet28_10", "half"),
    "cifar10/Andriushchenko2020Understanding": _cifar("preact_resnet18"),
    "cifar10/Wong2020Fast": _cifar("preact_resnet18", "cifar10"),
    "cifar10/Rice2020Overfitting_L2": _cifar("preact_resnet18", "cifar10"),
    "imagenet/Salman2020Do_R18": _imagenet("resnet18_imagenet"),
    "imagenet/Salman2020Do_R50": _imagenet("resnet50"),
    "imagenet/Engstrom2019Robustness": _imagenet("resnet50"),
    "imagenet/Wong2020Fast": _imagenet("resnet50"),
    "imagenet/Standard_R50": _imagenet("resnet50"),
}
assert all(e.normalization in (None, *NORMALIZATIONS) for e in ZOO_ENTRIES.values())
assert all(e.arch in ARCHITECTURE_CLASSES and e.dataset in DATASETS for e in ZOO_ENTRIES.values())


def zoo_entry(name: str) -> ZooEntry | None:
    """The entry called ``name``, or ``None`` (``name`` is then an architecture name)."""
    return ZOO_ENTRIES.get(name)
