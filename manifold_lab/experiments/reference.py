"""The ground-truth interface every data kind gives the experiment layer.

The experiment layer (evaluate, sweep, pipeline) sees a data kind only through
two objects, so that exact and learned ground truth go through the same code:

- a :class:`DataSpec` (frozen dataclass, one class per kind, registered in
  ``experiments.kinds``): the kind's parameters, how to build its
  :class:`Reference` for a run, the model inputs, and its
  :class:`RegimeReference`;
- a :class:`Reference` (built once per job from the run's base seed): training
  data, held-out points and labels, the noisy accuracy set, a tangent basis at
  each point, the reference gradient(s) and, when there is one, the model
  that anchors the regime rule.

Exact kinds (``kinds/exact.py``) fill the roles from a ``data.Distribution``:
exact tangents, the exact Bayes posterior gradient as reference gradient and the
Bayes-optimal classifier as regime reference (:data:`BAYES_OPTIMAL`). A learned
kind (tangents from an autoencoder chart, a denoiser's score; possibly trained
once per run and cached under ``cache_dir``) returns those instead and names
:data:`UNREGULARISED` as regime reference: the unregularised models of the
sweep. ``results.json`` records which (``config.reference``).
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import torch

__all__ = ["Reference", "DataSpec", "RegimeReference", "ModelReference", "UnregularisedReference",
           "BAYES_OPTIMAL", "UNREGULARISED", "POOLS"]

#: The pools a data kind draws examples from (``DataSpec.available_counts``): training
#: examples, held-out points of the gradient and sensitivity metrics, held-out points
#: of the accuracy; the value says what the pool is, for error messages.
POOLS = {"train": "training images", "eval": "held-out images for the metrics (first half of the test split)",
         "accuracy": "held-out images for the accuracy (second half of the test split)"}


class Reference(abc.ABC):
    """Ground truth of one run (one data kind, one base seed).

    Every method takes an explicit generator where it draws; tensors are CPU.
    Points are ``[n, d]`` vectors or ``[n, c, h, w]`` images (``d = c h w``).
    """

    @abc.abstractmethod
    def training_data(self, n: int, *, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` training examples ``(x [n, ...] float32, y [n] int64)``."""

    @abc.abstractmethod
    def eval_points(self, n: int, *, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-out points where gradients and sensitivities are measured, with labels.

        Exact kinds return noise-free points on the manifold in float64 (every
        reference quantity is then exact to float64 rounding).
        """

    @abc.abstractmethod
    def accuracy_points(self, n: int, *, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-out samples of the data distribution itself (accuracy, NLL)."""

    @abc.abstractmethod
    def tangent_basis(self, x: torch.Tensor) -> torch.Tensor:
        """Orthonormal tangent bases at ``x``: Tensor, shape [n, d, k]."""

    @abc.abstractmethod
    def reference_gradients(self, x: torch.Tensor, y: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(score, second)``, each ``[n, d]`` or ``second = None``.

        ``score`` is what input gradients are compared with (``score_cosine``):
        the exact Bayes gradient ``grad_x log p(y|x)`` for exact kinds, a learned
        score otherwise. ``second`` (``cond_score_cosine``) is optional, e.g. the
        class-conditional score ``grad_x log p(x|y)``; ``None`` gives NaN.
        """

    def eval_extras(self, x: torch.Tensor, y: torch.Tensor, *, device="cpu",
                    dtype: torch.dtype = torch.float32) -> dict:
        """What the kind's own metric fields need at the held-out points ``x``
        (``EvalSet.extras``; ``MetricField.needs`` names a key). Default: nothing."""
        return {}

    def fit_report(self) -> dict:
        """Quality figures of what the kind fitted (``results.json`` ``reference_fits``,
        for kinds with ``DataSpec.fits_reference``). Default: nothing."""
        return {}

    def reference_model(self) -> torch.nn.Module:
        """The model whose on-manifold sensitivity anchors the regime rule, when the
        kind's :class:`RegimeReference` is a :class:`ModelReference`."""
        raise NotImplementedError(f"{type(self).__name__} has no reference model")


@dataclass(frozen=True)
class RegimeReference(abc.ABC):
    """Where ``R_T^ref`` of the regime rule comes from (``config.reference``).

    ``job`` is the id of the extra sweep job whose model is the reference
    (``Reference.reference_model``), or ``None`` when the reference is made of
    the swept models themselves.
    """

    name: str
    job: str | None

    @abc.abstractmethod
    def on_reference(self, reference_row: dict | None, unregularised: Sequence[dict]) -> float:
        """``R_T^ref`` from the reference job's row and the unregularised model rows."""


@dataclass(frozen=True)
class ModelReference(RegimeReference):
    """The reference is a model of its own (e.g. the exact Bayes-optimal classifier)."""

    def on_reference(self, reference_row: dict | None, unregularised: Sequence[dict]) -> float:
        if reference_row is None:
            raise ValueError(f"the regime reference model {self.job!r} has no finished row")
        return reference_row["on_robustness"]


@dataclass(frozen=True)
class UnregularisedReference(RegimeReference):
    """The reference is the unregularised models of the sweep (seed mean of ``R_T``):
    the on-manifold sensitivity a model has before any robustness training."""

    def on_reference(self, reference_row: dict | None, unregularised: Sequence[dict]) -> float:
        values = [r["on_robustness"] for r in unregularised]
        if not values:
            raise ValueError("the regime reference needs the unregularised models, but the sweep has none")
        return sum(values) / len(values)


#: The exact Bayes-optimal model, an extra job of the sweep with id "bayes_optimal".
BAYES_OPTIMAL = ModelReference(name="bayes_optimal", job="bayes_optimal")
#: The sweep's unregularised models (no extra job).
UNREGULARISED = UnregularisedReference(name="unregularised", job=None)


@dataclass(frozen=True)
class DataSpec(abc.ABC):
    """Base class of the per-kind spec dataclasses (``experiments.kinds``).

    A subclass is a frozen dataclass with only the fields its kind uses, and sets
    the class attributes ``kind`` (its registered name) and ``regime_reference``.
    """

    kind: ClassVar[str] = ""
    regime_reference: ClassVar[RegimeReference] = BAYES_OPTIMAL
    #: True for kinds that fit ground truth once per run into ``cache_dir`` (an
    #: autoencoder, a denoiser): the sweep then builds the reference once in the
    #: driver (its fits in the local workers beside the models, ``backends.overlap``,
    #: or before any model job elsewhere), and every job reads the cached fits.
    fits_reference: ClassVar[bool] = False

    @abc.abstractmethod
    def build(self, seed: int, *, cache_dir: str | os.PathLike | None = None) -> Reference:
        """The run's :class:`Reference`, deterministic in ``seed``.

        ``cache_dir`` is a directory private to the run where a kind may keep what
        it fits once per run (an autoencoder, a denoiser); exact kinds ignore it.
        A kind with ``fits_reference`` also takes ``fit_runner``, a callable
        ``[(fn, args), ...] -> [fn(*args), ...]`` that runs its fits (the sweep passes
        its worker pool's, so models train on the cores the fits leave free); ``None``:
        the kind runs them itself.
        """

    def training_reference(self, seed: int) -> Reference:
        """A :class:`Reference` whose ``training_data`` is that of :meth:`build`'s, built
        without fitting anything (the sweep trains models while the fits run); only
        ``training_data`` may be called on it. Default: :meth:`build` (exact kinds fit
        nothing)."""
        return self.build(seed)

    def check_inputs(self) -> None:
        """Fail early, with a one-line ``ValueError``, on missing or unreadable inputs
        (data files, weights), before anything is written to a run directory
        (``pipeline.check_preset`` calls it first). Default: nothing to check."""

    def available_counts(self) -> Mapping[str, int] | None:
        """Examples available per pool of :data:`POOLS` (``{"train": n, "eval": n,
        "accuracy": n}``), read from the kind's files; ``None`` (the default) for kinds
        that sample as many points as asked. Called after :meth:`check_inputs`."""
        return None

    def own_counts(self) -> Mapping[str, Mapping[str, int]]:
        """What the kind itself draws, ``{pool: {field: count}}`` (e.g. the images its
        fits see, ``{"train": {"data.n_fit": 10000}}``). Default: nothing."""
        return {}

    def check_counts(self, needs: Mapping[str, Mapping[str, int]]) -> None:
        """One-line ``ValueError`` if a count of ``needs`` (``{pool: {field: count}}``,
        the preset's) or of :meth:`own_counts` exceeds :meth:`available_counts`, so
        too little data is found before any work, not at the first model."""
        available = self.available_counts()
        if available is None:
            return
        for source in (self.own_counts(), needs):
            for pool, wanted in source.items():
                for field, n in wanted.items():
                    have = available.get(pool)
                    if have is not None and n > have:
                        where = getattr(self, "data_dir", None)
                        found = f" in {where}" if where else ""
                        raise ValueError(
                            f"{field} = {n} asks for {n} {POOLS[pool]} but only {have} are available{found}; "
                            "give the full data set or use a preset with smaller counts")

    @abc.abstractmethod
    def model_inputs(self) -> dict:
        """Constructor arguments of ``models.build_model`` fixed by the data,
        e.g. ``{"in_dim": d, "n_classes": C}`` for vectors."""
