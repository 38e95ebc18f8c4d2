"""The preset registry: name -> (full preset, quick preset).

A preset module builds its two :class:`~manifold_lab.experiments.specs.Preset`
objects and calls :func:`register_preset`; ``presets/__init__.py`` imports every
preset module once, in the order ``--list`` shows them.
"""

from __future__ import annotations

from manifold_lab.experiments.specs import Preset

__all__ = ["PRESETS", "register_preset", "get_preset", "list_presets"]

#: name -> (full preset, quick preset)
PRESETS: dict[str, tuple[Preset, Preset]] = {}


def register_preset(full: Preset, quick: Preset) -> Preset:
    """Register ``full`` and its ``--quick`` variant under ``full.name``; ``ValueError`` if taken."""
    if full.name in PRESETS:
        raise ValueError(f"preset {full.name!r} is already registered")
    if quick.name != full.name:
        raise ValueError(f"the quick variant of {full.name!r} must keep its name, got {quick.name!r}")
    PRESETS[full.name] = (full, quick)
    return full


def list_presets() -> list[Preset]:
    """The full presets, in registration order."""
    return [full for full, _ in PRESETS.values()]


def get_preset(name: str, *, quick: bool = False) -> Preset:
    """The preset ``name`` (its ``quick`` variant when ``quick``); one-line error if unknown."""
    if name not in PRESETS:
        known = ", ".join(sorted(PRESETS))
        raise ValueError(f"unknown preset {name!r}; choose one of: {known} (see --list)")
    full, fast = PRESETS[name]
    return fast if quick else full
