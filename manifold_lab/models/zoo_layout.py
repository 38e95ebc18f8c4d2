"""Constructor options of a zoo architecture read from a checkpoint's keys and shapes.

Some model-zoo architectures come in variants that share a name but not a layout;
the checkpoint's ``state_dict`` tells them apart, so the user need not:

- ``preact_resnet18`` — RobustBench's ``PreActResNet18()`` (``PreActBlock``, no final
  BatchNorm) has no ``bn.*`` keys; its ``PreActBlockV2, bn_before_fc=True`` variant
  has them. Every RobustBench 1.1.1 entry pairs ``PreActBlock`` with no ``bn`` and
  ``PreActBlockV2`` with ``bn``, so ``bn.weight`` decides ``variant`` ("v2"/"plain").
- ``wideresnet28_10``, ``wideresnet34_10`` — ``sub_block1.*`` keys (TRADES-style
  files) set ``sub_block1=True``.
- ``wideresnet`` — any depth and width: ``depth = 6 N + 4`` with ``N`` the number of
  ``block1.layer.*`` blocks, ``widen_factor`` = output channels of
  ``block1.layer.0.conv1`` / 16, and ``sub_block1`` as above.

:func:`layout_options` returns ``{}`` for architectures without variants.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["layout_options"]

#: Channels of a WideResNet stem; ``block1``'s width is ``widen_factor`` times this.
_WRN_STEM = 16
#: Blocks of a WideResNet depth: ``depth = _WRN_PER_BLOCK * N + _WRN_EXTRA``.
_WRN_PER_BLOCK, _WRN_EXTRA = 6, 4


def _wideresnet_shape(shapes: Mapping[str, tuple]) -> dict:
    blocks = {k.split(".")[2] for k in shapes if k.startswith("block1.layer.")}
    conv = shapes.get("block1.layer.0.conv1.weight")
    if not blocks or conv is None:
        return {}  # not a WideResNet: let the key check name what is missing
    return {"depth": _WRN_PER_BLOCK * len(blocks) + _WRN_EXTRA, "widen_factor": max(int(conv[0]) // _WRN_STEM, 1)}


def layout_options(arch: str, shapes: Mapping[str, tuple]) -> dict:
    """Keyword arguments for ``build_architecture(arch, ...)`` that fit a ``state_dict``.

    Parameters
    ----------
    arch : str
        ``models.ARCHITECTURES`` name.
    shapes : mapping str -> tuple of int
        The checkpoint's keys (prefixes already stripped) and tensor shapes.

    Returns
    -------
    dict
        ``{}`` when the architecture has no variants (or the keys are not its).
    """
    if arch == "preact_resnet18":
        return {"variant": "v2" if "bn.weight" in shapes else "plain"}
    sub_block1 = {"sub_block1": any(k.startswith("sub_block1.") for k in shapes)}
    if arch in ("wideresnet28_10", "wideresnet34_10"):
        return sub_block1
    if arch == "wideresnet":
        return {**_wideresnet_shape(shapes), **sub_block1}
    return {}
