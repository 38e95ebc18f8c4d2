"""Experiment presets: plain, frozen dataclasses, serialisable to JSON.

A preset fixes everything a run depends on: the data kind (one spec dataclass
per kind, ``experiments.kinds``), the model, training, evaluation, the sweep grid
and the regime thresholds. ``get_preset`` returns the full or the ``quick``
variant; ``--seed`` shifts every seed of a run (see ``sweep.plan_jobs``).
Strength grids are log-spaced from negligible to excessive; what "strength"
means per regulariser is declared by its objective class (``strength_meaning``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from manifold_lab.experiments import paper_units
from manifold_lab.experiments.kinds import (
    Cifar10Spec, FashionMnistDistractorSpec, FashionMnistSpec, SignalDistractorSpec, VmfSphereSpec,
)
from manifold_lab.experiments.reference import DataSpec
from manifold_lab.experiments.regimes import RegimeThresholds
from manifold_lab.models import MODEL_CLASSES
from manifold_lab.training import objective_class, regularizers
from manifold_lab.training.augment import get_augmentation
from manifold_lab.training.objectives.base import check_weight

__all__ = [
    "DataSpec",
    "ModelSpec",
    "TrainSpec",
    "EvalSpec",
    "Preset",
    "PRESETS",
    "get_preset",
    "list_presets",
    "log_strengths",
    "preset_to_dict",
    "strength_meaning",
]


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


# --------------------------------------------------------------------------- presets
# toy_sphere follows docs/theory.md's prototype: a 2-sphere in R^512 (a large ambient
# dimension so off-manifold directions dominate), 4 classes, concentration 4,
# noise 0.01, softplus MLP, Adam. To fit 67 models in 5 minutes on 2 CPU cores the
# MLP is 2x128 (not 2x256: same accuracy, half the cost) and every model trains
# 800 steps (1,000 points x 80 epochs, batch 100, lr 3e-3): long enough that the
# unregularised model fits the samples' off-manifold noise (training loss below
# the Bayes NLL), as a network trained to convergence does; shorter training
# leaves it already off-manifold robust (README, notebooks/toy_sphere_regimes).
# PGD training uses 3 attack steps instead of 10 for the same budget.
_SPHERE_DATA = VmfSphereSpec(
    ambient_dim=512, intrinsic_dim=2, n_classes=4, noise_std=0.01, concentration=4.0,
)
_SIGMA = 0.1  # docs/theory.md prototype's scale (tangent noise norm 0.14 on a unit sphere)
_SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0)
_THEOREM_SIGMAS = (0.003, 0.01, 0.03, 0.1, 0.3)

# PGD training: 3 attack steps (step size 2.5 eps / 3, the objective's default).
_PGD_OPTIONS = {"steps": 3}

_SPHERE_SWEEP = (
    ("gradient_norm", log_strengths(1e-4, 10.0, 8)),
    ("smoothness", log_strengths(1e-2, 100.0, 8)),
    ("noise_augmentation", log_strengths(1e-2, 10.0, 8)),
    ("pgd_l2", log_strengths(1e-2, 3.0, 8), _PGD_OPTIONS),
)

_FULL_EVAL = EvalSpec(
    n_points=256, n_accuracy=2000, sigma=_SIGMA, sigmas=_SIGMAS, n_samples=32,
    theorem_sigmas=_THEOREM_SIGMAS, theorem_points=64, theorem_samples=128,
)
_QUICK_EVAL = EvalSpec(
    n_points=128, n_accuracy=1000, sigma=_SIGMA, sigmas=_SIGMAS, n_samples=16,
    theorem_sigmas=_THEOREM_SIGMAS, theorem_points=32, theorem_samples=64,
)

_THEOREM_MODELS = (("none", 0), ("gradient_norm", 3), ("noise_augmentation", 4))

TOY_SPHERE = Preset(
    name="toy_sphere",
    description="vMF mixture on a 2-sphere in R^512 (4 classes); 4 regularisers x 8 strengths",
    data=_SPHERE_DATA,
    model=ModelSpec("MLP", {"hidden": (128, 128), "activation": "softplus"}),
    train=TrainSpec(n_train=1000, epochs=80, lr=3e-3, batch_size=100),
    eval=_FULL_EVAL,
    sweep=_SPHERE_SWEEP,
    n_seeds=2,
    theorem_models=_THEOREM_MODELS,
)


def _quick(preset: Preset) -> Preset:
    """Every other strength, one seed, fewer evaluation points; same training."""
    return dataclasses.replace(
        preset,
        eval=_QUICK_EVAL,
        sweep=tuple((name, values[::2], options) for name, values, options in preset.sweep),
        n_seeds=1,
        theorem_models=(("none", 0),),
    )


TOY_SPHERE_QUICK = _quick(TOY_SPHERE)

_SUBSPACE_DATA = SignalDistractorSpec(
    ambient_dim=256, intrinsic_dim=4, distractor_dim=4, n_classes=4, noise_std=0.1,
)
# Signal std 1 and noise 0.1 in R^256 (noise norm ~1.6, ten times the sphere's):
# the noise and attack grids reach correspondingly further.
_SUBSPACE_SWEEP = (
    ("gradient_norm", log_strengths(1e-3, 100.0, 8)),
    ("smoothness", log_strengths(1e-2, 100.0, 8)),
    ("noise_augmentation", log_strengths(3e-2, 30.0, 8)),
    ("pgd_l2", log_strengths(3e-2, 10.0, 8), _PGD_OPTIONS),
)

TOY_SUBSPACE = Preset(
    name="toy_subspace",
    description="Gaussian signal + distractor in R^256 (4 classes); 4 regularisers x 8 strengths",
    data=_SUBSPACE_DATA,
    model=TOY_SPHERE.model,
    train=TOY_SPHERE.train,
    eval=_FULL_EVAL,
    sweep=_SUBSPACE_SWEEP,
    n_seeds=2,
    theorem_models=_THEOREM_MODELS,
)

TOY_SUBSPACE_QUICK = _quick(TOY_SUBSPACE)

# --------------------------------------------------------------------------- images
# fmnist (the paper's Figure 3 on Fashion-MNIST): images in [0, 1], D = 784, RMS image
# norm 12.7 (the paper's CIFAR steps scale to eps = 0.62 ... 3.83, documented 1.14).
# Def. 1 at sigma = 0.1 per pixel (noise norm 2.8, about a fifth of an image); the
# score at sigma = 0.1 (FashionMnistSpec.score_sigma). Strength grids reach from no
# visible effect to chance accuracy: noise std up to 3 (noise norm 6.6 x the image),
# PGD radius up to 10 (0.8 image norms). SmallCNN with softplus (C^2; gradient-norm
# training differentiates the input gradient), Adam. Sized for a 2-core laptop
# (66 models in about an hour, README): 6,000 training images x 5 epochs (470 Adam
# steps) per model; 256 held-out points x 8 draws per sigma. On a GPU, raise n_train
# and epochs (a new preset or dataclasses.replace; the fingerprint keeps runs apart).
_IMAGE_SIGMA = 0.1
_IMAGE_SIGMAS = (0.01, 0.03, 0.1, 0.3, 1.0)
_IMAGE_SWEEP = (
    ("gradient_norm", log_strengths(1e-4, 10.0, 8)),
    ("smoothness", log_strengths(1e-2, 100.0, 8)),
    ("noise_augmentation", log_strengths(1e-2, 3.0, 8)),
    ("pgd_l2", log_strengths(3e-2, 10.0, 8), _PGD_OPTIONS),
)
_IMAGE_MODEL = ModelSpec("SmallCNN", {"activation": "softplus"})

FMNIST = Preset(
    name="fmnist",
    description="Fashion-MNIST, SmallCNN (softplus); autoencoder tangents, denoiser score; "
                "4 regularisers x 8 strengths",
    data=FashionMnistSpec(n_fit=10000, latent_dim=16, ae_epochs=20, ae_width=32,
                          denoiser_epochs=8, denoiser_width=16, n_directions=8),
    model=_IMAGE_MODEL,
    train=TrainSpec(n_train=6000, epochs=5, lr=2e-3, batch_size=64),
    eval=EvalSpec(n_points=256, n_accuracy=2000, sigma=_IMAGE_SIGMA, sigmas=_IMAGE_SIGMAS, n_samples=8,
                  theorem_sigmas=(0.003, 0.01, 0.03, 0.1), theorem_points=16, theorem_samples=32),
    sweep=_IMAGE_SWEEP,
    n_seeds=2,
)

# Quick: 3 of the 8 strengths (indices 1, 4, 7: the excessive end included), one
# seed, 1,500 training images x 4 epochs (120 Adam steps), fits on 2,000 images
# (autoencoder width 16, 8 epochs; denoiser width 8, 2 epochs), 48 held-out points:
# within 5 minutes on 2 loaded cores including both fits (README).
FMNIST_QUICK = dataclasses.replace(
    FMNIST,
    data=FashionMnistSpec(n_fit=2000, latent_dim=16, ae_epochs=8, ae_width=16,
                          denoiser_epochs=2, denoiser_width=8, n_directions=4),
    train=TrainSpec(n_train=1500, epochs=4, lr=2e-3, batch_size=50),
    eval=EvalSpec(n_points=48, n_accuracy=1000, sigma=_IMAGE_SIGMA, sigmas=_IMAGE_SIGMAS, n_samples=4,
                  theorem_sigmas=(0.003, 0.01, 0.03, 0.1), theorem_points=4, theorem_samples=8),
    sweep=tuple((name, values[1::3], options) for name, values, options in FMNIST.sweep),
    n_seeds=1,
)

# fmnist_distractor (the paper's Figure 5): 56x28 images, a Fashion-MNIST item and a
# label-independent Fashion-MNIST distractor (MNIST digits with --distractor-dir) at
# random top/bottom. A standard model and robust ones (PGD-L2, gradient norm over a few
# strengths), one seed (9 models at twice fmnist's image size); half sensitivities at
# sigma = 0.3 per pixel (noise norm 8.4 on a half whose RMS norm is 12.7), curve over
# the paper's range 1e-2 ... 1e1.
_DISTRACTOR_SWEEP = (
    ("pgd_l2", log_strengths(0.1, 10.0, 4), _PGD_OPTIONS),
    ("gradient_norm", log_strengths(1e-3, 1.0, 4)),
)
FMNIST_DISTRACTOR = Preset(
    name="fmnist_distractor",
    description="Fashion-MNIST signal + label-independent distractor half (56x28), SmallCNN; "
                "signal vs distractor sensitivity (Figure 5)",
    data=FashionMnistDistractorSpec(**{**FMNIST.data.__dict__}),
    model=_IMAGE_MODEL,
    train=FMNIST.train,
    eval=FMNIST.eval,
    sweep=_DISTRACTOR_SWEEP,
    n_seeds=1,
)
# Quick: the random top/bottom placement makes the task harder than fmnist (1,500
# images x 4 epochs left every model at chance): 3,000 images x 4 epochs (240 Adam steps,
# lr 3e-3), PGD at two radii and one gradient-norm weight, one seed.
FMNIST_DISTRACTOR_QUICK = dataclasses.replace(
    FMNIST_DISTRACTOR,
    data=FashionMnistDistractorSpec(**{**FMNIST_QUICK.data.__dict__}),
    train=TrainSpec(n_train=3000, epochs=4, lr=3e-3, batch_size=50),
    eval=FMNIST_QUICK.eval,
    sweep=(("pgd_l2", FMNIST_DISTRACTOR.strengths("pgd_l2")[1::2], _PGD_OPTIONS),
           ("gradient_norm", FMNIST_DISTRACTOR.strengths("gradient_norm")[2:3])),
    n_seeds=1,
)

# cifar10 (the paper's CIFAR-10 protocol, docs/theory.md): ResNet-18 (CIFAR variant, inputs
# in [0, 1]), SGD momentum 0.9, weight decay 5e-4, batch 128, 200 epochs, lr 0.025 x0.1
# at 75 % and 87.5 % of the epochs, random crop (pad 4) + horizontal flip. The paper's
# 30 log-spaced strengths per regulariser, in the paper's units (_CIFAR_PAPER_GRID, kept
# in the docs beside ours), mapped to the library's per-example units
# (experiments.paper_units; the grids given to the objectives are ours):
#   gradient norm  c 1e-5 ... 1e2      -> weight 1e5 c / 128^2 = 6.10 c   (6.10e-5 ... 610)
#   smoothness     1e-4 ... 1e4        -> the same (per-example mean logit change at sigma 0.1)
#   noise sigma    1e-3 ... 1e2        -> the same (per-pixel std on [0, 1] images)
#   PGD-L2         eps_batch 1e-5 ... 1e4 -> per-example eps_batch / sqrt(128)  (8.84e-7 ... 884)
# PGD: 10 steps (the paper's), step 2.5 eps / 10 (ours; the paper: 2 eps / 10), inputs
# clipped to [0, 1]. Gradient norm: the paper's lr rule, lr / (c / 0.01) for c > 0.01, is
# GradientNorm's lr_weight at c = 0.01 (weight 0.0610). One seed (the paper's), 256 metric images (~200 in the
# paper), 5,000 accuracy images (the second half of the test split). Fits on all 50,000
# training images (autoencoder latent 64; denoiser, or a user's DDPM via score_model).
_CIFAR_PAPER_GRID = {
    "gradient_norm": log_strengths(1e-5, 1e2, 30),
    "smoothness": log_strengths(1e-4, 1e4, 30),
    "noise_augmentation": log_strengths(1e-3, 1e2, 30),
    "pgd_l2": log_strengths(1e-5, 1e4, 30),
}
_CIFAR_TO_OURS = {"gradient_norm": paper_units.gradient_norm_weight, "pgd_l2": paper_units.pgd_eps}
_CIFAR_OPTIONS = {"pgd_l2": {"steps": 10, "bounds": (0.0, 1.0)},
                  "gradient_norm": {"lr_weight": paper_units.gradient_norm_weight(0.01)}}
_CIFAR_SWEEP = tuple(
    (name, tuple(_CIFAR_TO_OURS.get(name, float)(v) for v in grid), _CIFAR_OPTIONS.get(name, {}))
    for name, grid in _CIFAR_PAPER_GRID.items())
_CIFAR_TRAIN = TrainSpec(n_train=50000, epochs=200, lr=0.025, batch_size=paper_units.PAPER_BATCH_SIZE,
                         optimizer="sgd", weight_decay=5e-4, lr_milestones=(0.75, 0.875), lr_gamma=0.1,
                         augment="crop_flip")
_CIFAR_THEOREM_SIGMAS = (0.003, 0.01, 0.03, 0.1)

CIFAR10 = Preset(
    name="cifar10",
    description="CIFAR-10 (--data-dir), ResNet-18, the paper's schedule and 30-strength grids; "
                "autoencoder tangents, denoiser or DDPM score",
    data=Cifar10Spec(),
    model=ModelSpec("ResNet18", {}),
    train=_CIFAR_TRAIN,
    eval=EvalSpec(n_points=256, n_accuracy=5000, sigma=_IMAGE_SIGMA, sigmas=_IMAGE_SIGMAS, n_samples=16,
                  theorem_sigmas=_CIFAR_THEOREM_SIGMAS, theorem_points=16, theorem_samples=32),
    sweep=_CIFAR_SWEEP,
    n_seeds=1,
)

# Quick: the whole pipeline on CPU in minutes on a few hundred images: ResNet-18 at a
# quarter width (16 channels), 400 training images x 2 epochs (the paper's optimiser,
# weight decay, step schedule and crop + flip), two strengths per regulariser (grid
# indices 10 and 20), PGD with 3 steps, tiny fits on 400 images, 32 metric images,
# 200 accuracy images (README: measured time).
_CIFAR_QUICK_INDICES = (10, 20)
CIFAR10_QUICK = dataclasses.replace(
    CIFAR10,
    data=Cifar10Spec(n_fit=400, latent_dim=16, ae_epochs=4, ae_width=16, denoiser_epochs=2,
                     denoiser_width=8, n_directions=4),
    model=ModelSpec("ResNet18", {"width": 16}),
    train=dataclasses.replace(_CIFAR_TRAIN, n_train=400, epochs=2, batch_size=64),
    eval=EvalSpec(n_points=32, n_accuracy=200, sigma=_IMAGE_SIGMA, sigmas=_IMAGE_SIGMAS, n_samples=4,
                  theorem_sigmas=_CIFAR_THEOREM_SIGMAS, theorem_points=4, theorem_samples=8),
    sweep=tuple((name, tuple(values[i] for i in _CIFAR_QUICK_INDICES),
                 {**options, "steps": 3} if name == "pgd_l2" else options)
                for name, values, options in CIFAR10.sweep),
    n_seeds=1,
)

#: name -> (full preset, quick preset)
PRESETS: dict[str, tuple[Preset, Preset]] = {
    TOY_SPHERE.name: (TOY_SPHERE, TOY_SPHERE_QUICK),
    TOY_SUBSPACE.name: (TOY_SUBSPACE, TOY_SUBSPACE_QUICK),
    FMNIST.name: (FMNIST, FMNIST_QUICK),
    FMNIST_DISTRACTOR.name: (FMNIST_DISTRACTOR, FMNIST_DISTRACTOR_QUICK),
    CIFAR10.name: (CIFAR10, CIFAR10_QUICK),
}


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
