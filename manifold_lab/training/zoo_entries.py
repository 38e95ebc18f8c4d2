"""Named model-zoo entries: which architecture a RobustBench id is, and how its inputs are prepared.

A few RobustBench models prepare their inputs inside ``forward`` and keep no buffer
that says so (``Hendrycks2019Using`` computes ``2x − 1``; the ImageNet entries are
``normalize_model(resnet, mean, std)`` whose files hold the network only). Their
checkpoints cannot tell the loader, so the entry's name does: ``--arch
cifar10/Hendrycks2019Using`` is ``wideresnet28_10`` behind the ``half``
normalisation. Names are ``<dataset>/<RobustBench id>`` because RobustBench reuses
ids across data sets (``Wong2020Fast`` is a CIFAR PreAct ResNet-18 and an ImageNet
ResNet-50).

Every entry was read from RobustBench 1.1.1's ``model_zoo/cifar10.py`` and
``model_zoo/imagenet.py`` (the class each id builds, its ``forward`` and buffers);
``tests/fixtures/upstream/make_fixtures.py`` builds each listed id with the upstream
code and records its ``state_dict`` keys and shapes, and
``tests/test_zoo_upstream.py`` checks that the entry's architecture has exactly
those keys and shapes (so a wrong architecture or variant cannot hide here).
"""

from __future__ import annotations

from dataclasses import dataclass

from manifold_lab.models.normalized import NORMALIZATIONS

__all__ = ["ZooEntry", "ZOO_ENTRIES", "zoo_entry"]


@dataclass(frozen=True)
class ZooEntry:
    """One named checkpoint family.

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


def zoo_entry(name: str) -> ZooEntry | None:
    """The entry called ``name``, or ``None`` (``name`` is then an architecture name)."""
    return ZOO_ENTRIES.get(name)
