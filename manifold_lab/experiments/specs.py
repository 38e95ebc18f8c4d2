"""The dataclasses a preset is made of: model, training, evaluation, the preset itself.

Plain frozen dataclasses, serialisable to JSON (:func:`preset_to_dict`). They
name no data kind: a preset's ``data`` is any kind's spec dataclass
(``experiments.kinds``), so lower modules (``evaluate``, ``metric_fields``,
``build``) can use these types without importing the kinds or the presets.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from manifold_lab.experiments.reference import DataSpec
from manifold_lab.experiments.regimes import RegimeThresholds
from manifold_lab.models import MODEL_CLASSES
from manifold_lab.training import objective_class, regularizers
from manifold_lab.training.augment import get_augmentation
from manifold_lab.training.objectives.base import check_weight

__all__ = ["DataSpec", "ModelSpec", "TrainSpec", "EvalSpec", "Preset", "log_strengths", "preset_to_dict",
           "strength_meaning"]


def strength_meaning() -> dict[str, str]:
    """How ``make_objective(name, strength)`` reads ``strength``, per registered regulariser."""
    return {name: objective_class(name).strength_meaning for name in regularizers()}


#: Significant digits kept in generated strengths, so grids print cleanly.
_STRENGTH_DIGITS = 3


def log_strengths(low: float, high: float, n: int) -> tuple[float, ...]:
    """``n`` log-spaced strengths from ``low`` to ``high`` inclusive (3 significant digits)."""
    if not (low > 0 and high > low and n >= 2):
        raise ValueError(f"need 0 < low < high and n >= 2, got low={low}, high={high}, n={n}")
    step = (math.log10(high) - math.log10(low)) / (n - 1)
    return tuple(
        float(f"{10 ** (math.log10(low) + i * step):.{_STRENGTH_DIGITS}g}") for i in range(n)
    )


@dataclass(frozen=True)
class ModelSpec:
    """Any registered model class (``models.MODEL_CLASSES``): ``name`` and its
    constructor ``options``; the data kind adds its input size and class count
    (``DataSpec.model_inputs``), the sweep the initialisation seed."""

    name: str = "MLP"
    options: dict = field(default_factory=lambda: {"hidden": (256, 256), "activation": "softplus"})

    def __post_init__(self) -> None:
        if self.name not in MODEL_CLASSES:
            raise ValueError(f"ModelSpec.name must be one of {sorted(MODEL_CLASSES)}, got {self.name!r}")
        if not isinstance(self.options, dict):
            raise ValueError(f"ModelSpec.options must be a dict, got {type(self.options).__name__}")


@dataclass(frozen=True)
class TrainSpec:
    """Training of every swept model (the unregularised one included).

    Regulariser-specific settings (e.g. PGD steps) are options of the preset's
    sweep entries, not training settings. ``optimizer`` is a name of
    ``training.OPTIMIZERS`` (``"sgd"``: momentum 0.9); ``lr_milestones`` are
    fractions of ``epochs`` after which the learning rate is multiplied by
    ``lr_gamma`` (the paper's CIFAR schedule: ``(0.75, 0.875)``, 0.1);
    ``augment`` names a ``training.augment.AUGMENTATIONS`` entry (``"crop_flip"``).
    The defaults (no decay, constant rate, no augmentation) are what the toy and
    Fashion-MNIST presets train with.
    """

    n_train: int
    epochs: int
    lr: float
    batch_size: int
    optimizer: str = "adam"
    weight_decay: float = 0.0
    lr_milestones: tuple[float, ...] = ()
    lr_gamma: float = 0.1
    augment: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_milestones", tuple(float(f) for f in self.lr_milestones))
        if any(not 0 < f < 1 for f in self.lr_milestones):
            raise ValueError(f"TrainSpec.lr_milestones are fractions of the epochs in (0, 1), "
                             f"got {self.lr_milestones}")
        get_augmentation(self.augment)  # one-line error for an unknown name

    def milestone_epochs(self) -> tuple[int, ...]:
        """``lr_milestones`` in epochs: ``round(f * epochs)`` (at least 1), duplicates merged;
        e.g. (0.75, 0.875) of 200 epochs -> (150, 175)."""
        return tuple(sorted({max(1, round(f * self.epochs)) for f in self.lr_milestones}))


@dataclass(frozen=True)
class EvalSpec:
    """Evaluation at held-out points.

    ``n_points`` held-out points (noise-free, on the manifold, for exact kinds)
    carry every sensitivity and gradient metric; ``n_accuracy`` noisy samples
    (the data distribution itself) carry accuracy. ``sigma`` is the documented
    noise scale of the reported ``on_robustness``/``off_robustness``; ``sigmas``
    is the curve (it must contain ``sigma``). ``theorem_sigmas`` are the scales
    of the Theorem 3.1 table.
    """

    n_points: int
    n_accuracy: int
    sigma: float
    sigmas: tuple[float, ...]
    n_samples: int
    theorem_sigmas: tuple[float, ...]
    theorem_points: int
    theorem_samples: int

    def __post_init__(self) -> None:
        if not any(math.isclose(s, self.sigma) for s in self.sigmas):
            raise ValueError(f"EvalSpec.sigmas {self.sigmas} must contain sigma={self.sigma}")


def _sweep_entry(entry) -> tuple[str, tuple[float, ...], dict]:
    """``(name, strengths)`` or ``(name, strengths, options)`` -> the 3-tuple form."""
    if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
        raise ValueError(f"a sweep entry is (regulariser, strengths[, options]), got {entry!r}")
    name, strengths = entry[0], tuple(check_weight("strength", s) for s in entry[1])
    options = entry[2] if len(entry) == 3 else {}
    if not isinstance(options, dict):
        raise ValueError(f"sweep entry {name!r}: options must be a dict of make_objective "
                         f"arguments, got {options!r}")
    options = dict(options)
    objective_class(name)  # one-line error for an unknown regulariser
    if name == "none":
        raise ValueError("the unregularised model is always trained; do not list 'none' in the sweep")
    return name, strengths, options


@dataclass(frozen=True)
class Preset:
    """A full experiment: data, model, training, evaluation, sweep, regime thresholds.

    ``sweep`` is a tuple of ``(regulariser, strengths, options)`` entries (given
    as pairs, options default to ``{}``; options go to ``make_objective``, e.g.
    ``("pgd_l2", strengths, {"steps": 3})``); each strength is trained with
    ``n_seeds`` seeds, plus ``n_seeds`` unregularised models and, when the data
    kind's regime reference is a model (exact kinds: the Bayes-optimal model),
    that model. ``theorem_models`` names the models that get a Theorem 3.1
    table, as ``(regulariser, strength index)`` (``("none", 0)`` is the
    unregularised model), always on seed 0, plus the reference model.
    """

    name: str
    description: str
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    eval: EvalSpec
    sweep: tuple
    n_seeds: int = 2
    thresholds: RegimeThresholds = field(default_factory=RegimeThresholds)
    theorem_models: tuple[tuple[str, int], ...] = (("none", 0),)

    def __post_init__(self) -> None:
        if not isinstance(self.data, DataSpec):
            raise ValueError(f"Preset.data must be a data kind spec (experiments.kinds), "
                             f"got {type(self.data).__name__}")
        object.__setattr__(self, "sweep", tuple(_sweep_entry(e) for e in self.sweep))

    @property
    def regularizers(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.sweep)

    def strengths(self, regularizer: str) -> tuple[float, ...]:
        for name, values, _ in self.sweep:
            if name == regularizer:
                return values
        raise ValueError(f"preset {self.name!r} has no regulariser {regularizer!r}")

    @property
    def n_models(self) -> int:
        """Trained models in the grid (a reference model is not trained)."""
        return self.n_seeds * (1 + sum(len(v) for _, v, _ in self.sweep))


def preset_to_dict(preset: Preset) -> dict:
    """A JSON-ready dict of every field (tuples become lists; ``data`` gains its ``kind``)."""
    config = dataclasses.asdict(preset)
    config["data"] = {"kind": preset.data.kind, **config["data"]}
    return config
