"""The registry of data kinds: name -> spec class (``@register_kind`` in each kind's module)."""

from __future__ import annotations

import dataclasses

from manifold_lab.experiments.reference import DataSpec

__all__ = ["KINDS", "register_kind", "unregister_kind", "kind_class", "data_spec_from_dict"]

#: Registered kinds, name -> spec class (read it; register with ``register_kind``).
KINDS: dict[str, type[DataSpec]] = {}


def register_kind(cls: type[DataSpec]) -> type[DataSpec]:
    """Class decorator: register a frozen ``DataSpec`` dataclass under ``cls.kind``."""
    if not (isinstance(cls, type) and issubclass(cls, DataSpec) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"register_kind needs a DataSpec dataclass, got {cls!r}")
    if not cls.kind:
        raise ValueError(f"{cls.__name__} must set the class attribute `kind`")
    if cls.kind in KINDS and KINDS[cls.kind] is not cls:
        raise ValueError(f"data kind {cls.kind!r} is already registered by {KINDS[cls.kind].__name__}")
    KINDS[cls.kind] = cls
    return cls


def unregister_kind(kind: str) -> None:
    """Remove a kind (tests and notebooks that register their own)."""
    KINDS.pop(kind, None)


def kind_class(kind: str) -> type[DataSpec]:
    """The spec class of ``kind``; one-line ``ValueError`` if unknown."""
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; choose one of {sorted(KINDS)}")
    return KINDS[kind]


def data_spec_from_dict(config: dict) -> DataSpec:
    """Rebuild a spec from ``{"kind": ..., **fields}`` (``results.json`` ``config.data``)."""
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"a data spec dict needs a 'kind', got {config!r}")
    cls = kind_class(config["kind"])
    try:
        return cls(**{k: v for k, v in config.items() if k != "kind"})
    except TypeError as exc:
        raise ValueError(f"config {config} does not fit data kind {config['kind']!r}: {exc}") from None
