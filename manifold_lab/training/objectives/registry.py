"""The registry of regularisers: name -> objective class, and ``make_objective``.

Every sweepable objective class declares its ``regularizer`` name, what its
strength sets and means, its relative cost and its default options (see
``Objective``), and registers itself with the ``@register_objective`` line in
its own module; nothing else lists regularisers. ``objectives/__init__.py``
imports the built-in modules, which is what registers them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Iterator

from manifold_lab.training.objectives.base import Objective, check_weight

__all__ = ["REGULARIZERS", "STRENGTH_PARAMETER", "register_objective", "unregister_objective",
           "objective_class", "regularizers", "make_objective", "objective_from_config"]

_REGISTRY: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` available as ``make_objective(cls.regularizer, ...)``.

    Raises ``ValueError`` when the class does not declare a ``regularizer`` name
    and ``name``, or when the name is taken by another class.
    """
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise ValueError(f"register_objective needs an Objective subclass, got {cls!r}")
    name = cls.regularizer
    if not isinstance(name, str) or not name or not cls.name:
        raise ValueError(f"{cls.__name__} must set the class attributes `regularizer` and `name`")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"regulariser {name!r} is already registered by "
                         f"{_REGISTRY[name].__name__}; choose another name")
    if float(cls.relative_cost) < 0:
        raise ValueError(f"{cls.__name__}.relative_cost must be >= 0, got {cls.relative_cost}")
    _REGISTRY[name] = cls
    return cls


def unregister_objective(name: str) -> None:
    """Remove regulariser ``name`` (tests and notebooks that register their own)."""
    _REGISTRY.pop(name, None)


def regularizers() -> tuple[str, ...]:
    """The registered regulariser names, in registration order."""
    return tuple(_REGISTRY)


def objective_class(name: str) -> type[Objective]:
    """The class registered as regulariser ``name``; one-line ``ValueError`` if unknown."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown regulariser {name!r}; choose one of {list(_REGISTRY)}")
    return _REGISTRY[name]


class _RegularizerNames(Sequence):
    """Read-only live view of the registered names (``REGULARIZERS``)."""

    def __getitem__(self, i):
        return regularizers()[i]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return repr(regularizers())


class _StrengthParameters(Mapping):
    """Read-only live view ``name -> strength_parameter`` (``STRENGTH_PARAMETER``)."""

    def __getitem__(self, name: str) -> str | None:
        return _REGISTRY[name].strength_parameter

    def __iter__(self) -> Iterator[str]:
        return iter(regularizers())

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


#: The registered regulariser names (a live view of the registry).
REGULARIZERS: Sequence[str] = _RegularizerNames()
#: What the single ``strength`` of :func:`make_objective` sets, per regulariser (live view).
STRENGTH_PARAMETER: Mapping[str, str | None] = _StrengthParameters()


def make_objective(name: str, strength: float = 0.0, **options) -> Objective:
    """The objective of regulariser ``name`` at strength ``s`` (a sweep's single knob).

    ``objective_class(name)(**{**default_options, **options, strength_parameter: s})``;
    for the built-ins:

    - ``"none"``: ``CrossEntropy()`` (``s`` ignored);
    - ``"gradient_norm"``: ``GradientNorm(weight=s, of="loss")``;
    - ``"smoothness"``: ``Smoothness(weight=s, noise_std=SMOOTHNESS_NOISE_STD)`` (σ = 0.1);
    - ``"noise_augmentation"``: ``NoiseAugmentation(noise_std=s)``;
    - ``"pgd_l2"``: ``PGDAdversarial(eps=s, steps=10)``.

    Parameters
    ----------
    name : str
        One of :data:`REGULARIZERS`.
    strength : float
        Finite, >= 0 (not a bool or a string).
    **options
        Other constructor arguments, e.g. ``noise_std=`` for smoothness,
        ``steps=``/``bounds=`` for pgd_l2, ``of="logit"`` for gradient_norm.
    """
    cls = objective_class(name)
    strength = check_weight("strength", strength)
    if cls.strength_parameter is not None and cls.strength_parameter in options:
        raise ValueError(f"regulariser {name!r}: set {cls.strength_parameter!r} through the "
                         "strength, not as an option")
    kwargs = {**cls.default_options, **options}
    if cls.strength_parameter is not None:
        kwargs[cls.strength_parameter] = strength
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad options {options} for regulariser {name!r}: {exc}") from None


def objective_from_config(config: dict) -> Objective:
    """Rebuild an objective from its ``config()`` dict."""
    classes = {cls.name: cls for cls in _REGISTRY.values()}
    if not isinstance(config, dict) or config.get("name") not in classes:
        raise ValueError(f"config must be a dict with 'name' in {sorted(classes)}, got {config!r}")
    args = {k: v for k, v in config.items() if k != "name"}
    try:
        return classes[config["name"]](**args)
    except TypeError as exc:
        raise ValueError(f"config {config} does not fit {config['name']}: {exc}") from None
