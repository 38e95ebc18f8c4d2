"""Metric fields, declared once: name, how it is computed, how it is printed.

Every model row of ``results.json``, the columns of ``models.csv``, the seed
groups and the summary table are made from :func:`metric_fields`, in
declaration order. A field is one of

- a *model* field: ``compute(m)`` on the :class:`Measurement` ``m`` of one model
  (its cached gradients, robustness sweep and accuracy-set predictions), run by
  ``evaluate.evaluate_model``;
- a *regime* field (``compute=None``): filled in when results are assembled,
  because it needs the run's regime reference (``on_relative = R_T / R_T^ref``).

A new metric is one ``register_metric(MetricField(...))`` call (see
docs/extending.md); ``header`` puts it in the summary table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch

from manifold_lab import metrics
from manifold_lab.experiments.presets import EvalSpec
from manifold_lab.experiments.seeds import derive_seed, make_generator

__all__ = ["MetricField", "Measurement", "register_metric", "unregister_metric", "metric_fields",
           "model_fields", "regime_fields", "numeric_field_names"]


def _mean(t: torch.Tensor) -> float:
    return float(t.double().mean())


class Measurement:
    """The shared quantities of one model at the run's held-out points, computed
    once on first use (the model is in eval mode while fields are computed).

    Attributes
    ----------
    model, es, spec, seed
        The model, its ``evaluate.EvalSet``, the ``EvalSpec`` and the noise seed.
    """

    def __init__(self, model: torch.nn.Module, es, spec: EvalSpec, *, seed: int) -> None:
        self.model, self.es, self.spec, self.seed = model, es, spec, seed

    @cached_property
    def log_p_acc(self) -> torch.Tensor:
        """``log p_model(. | x_acc)``, shape [m, C]."""
        with torch.no_grad():
            return torch.log_softmax(self.model(self.es.x_acc), dim=-1)

    @cached_property
    def grad(self) -> torch.Tensor:
        """``g = grad_x log p_model(y | x)`` at the held-out points, shape [n, d]."""
        return metrics.input_gradient(self.model, self.es.x, self.es.y, target="log_softmax").detach()

    @cached_property
    def tau(self) -> torch.Tensor:
        """Tangent fractions ``||P_T g|| / ||g||``, shape [n]."""
        return metrics.tangent_fraction(self.grad, self.es.basis)

    @cached_property
    def robustness(self):
        """Def. 1 ``R_T``, ``R_N`` at every ``spec.sigmas`` (one noise seed for every
        model of the sweep: common random numbers)."""
        es = self.es
        f = metrics.scalar_fn(self.model, es.y, target="log_softmax")
        return metrics.manifold_robustness(
            f, es.x, es.basis, torch.tensor(self.spec.sigmas, dtype=es.x.dtype, device=es.x.device),
            n_samples=self.spec.n_samples,
            generator=make_generator(derive_seed(self.seed, "robustness-noise"), es.x.device),
        )

    @cached_property
    def sigma_index(self) -> int:
        """Index of ``spec.sigma`` in ``spec.sigmas``."""
        sigmas = self.spec.sigmas
        return min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - self.spec.sigma))

    def at_sigma(self, name: str) -> float:
        """``robustness.<name>`` at ``spec.sigma`` (``on``, ``off``, ``on_stderr``, ``off_stderr``)."""
        return float(getattr(self.robustness, name)[self.sigma_index])


@dataclass(frozen=True)
class MetricField:
    """One scalar field of every model row.

    Parameters
    ----------
    name : str
        Key in results.json rows, CSV column, seed-group field.
    compute : callable or None
        ``compute(m: Measurement) -> float``; ``None`` for a regime field.
    fmt : str
        ``str.format`` pattern of the summary table.
    header : str or None
        Summary-table column header; ``None`` keeps the field out of the table.
    doc : str
        One line for the README and docs.
    """

    name: str
    compute: Callable[[Measurement], float] | None
    fmt: str = "{:.3f}"
    header: str | None = None
    doc: str = ""


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.inf


def _accuracy(m: Measurement) -> float:
    return _mean((m.log_p_acc.argmax(-1) == m.es.y_acc).to(torch.float64))


def _nll(m: Measurement) -> float:
    return -_mean(m.log_p_acc[torch.arange(m.es.y_acc.shape[0]), m.es.y_acc])


def _cosine_with(second: bool) -> Callable[[Measurement], float]:
    def compute(m: Measurement) -> float:
        ref = m.es.second_score if second else m.es.score
        return math.nan if ref is None else _mean(metrics.score_cosine(m.grad, ref))
    return compute


_FIELDS: dict[str, MetricField] = {}


def register_metric(f: MetricField, *, replace: bool = False) -> MetricField:
    """Add ``f`` after the fields declared so far; ``ValueError`` if the name is taken."""
    if not isinstance(f, MetricField):
        raise ValueError(f"register_metric needs a MetricField, got {type(f).__name__}")
    if f.name in _FIELDS and not replace:
        raise ValueError(f"metric field {f.name!r} is already declared")
    _FIELDS[f.name] = f
    return f


def unregister_metric(name: str) -> None:
    """Remove a field (tests and notebooks that declare their own)."""
    _FIELDS.pop(name, None)


def metric_fields() -> tuple[MetricField, ...]:
    """Every declared field, in declaration order."""
    return tuple(_FIELDS.values())


def model_fields() -> tuple[MetricField, ...]:
    """Fields computed per model by ``evaluate_model``."""
    return tuple(f for f in _FIELDS.values() if f.compute is not None)


def regime_fields() -> tuple[MetricField, ...]:
    """Fields filled in at assembly from the regime reference."""
    return tuple(f for f in _FIELDS.values() if f.compute is None)


def numeric_field_names() -> tuple[str, ...]:
    """Model fields, then regime fields: the numbers of a row (CSV and seed-group order)."""
    return tuple(f.name for f in (*model_fields(), *regime_fields()))


for _f in (
    MetricField("accuracy", _accuracy, "{:.3f}", "acc", "accuracy on the noisy held-out samples"),
    MetricField("nll", _nll, doc="mean -log p(y|x) on the noisy held-out samples"),
    MetricField("on_robustness", lambda m: m.at_sigma("on"), "{:.2e}", "R_T",
                "Def. 1 on-manifold sensitivity R_T at sigma"),
    MetricField("off_robustness", lambda m: m.at_sigma("off"), "{:.2e}", "R_N",
                "Def. 1 off-manifold sensitivity R_N at sigma"),
    MetricField("on_stderr", lambda m: m.at_sigma("on_stderr"), doc="standard error of R_T"),
    MetricField("off_stderr", lambda m: m.at_sigma("off_stderr"), doc="standard error of R_N"),
    MetricField("off_on_ratio", lambda m: _ratio(m.at_sigma("off"), m.at_sigma("on")), "{:.3f}",
                "R_N/R_T", "R_N / R_T"),
    MetricField("on_relative", None, "{:.3f}", "R_T/R_T*",
                "R_T / R_T^ref, the regime reference's on-manifold sensitivity"),
    MetricField("alignment_ratio", lambda m: metrics.pooled_alignment(m.grad, m.es.basis), "{:.3f}",
                "A", "Def. 2 pooled: sum ||P_N g||^2 / sum ||P_T g||^2"),
    MetricField("alignment_ratio_median",
                lambda m: float(metrics.alignment_ratio(m.grad, m.es.basis).double().median()),
                doc="median of the per-point A(x)"),
    MetricField("tangent_fraction", lambda m: _mean(m.tau), "{:.3f}", "tau",
                "mean ||P_T g|| / ||g|| (chance sqrt(k/d))"),
    MetricField("score_cosine", _cosine_with(False), "{:.3f}", "cos",
                "mean cosine of g with the reference gradient"),
    MetricField("cond_score_cosine", _cosine_with(True), "{:.3f}", "cos_c",
                "mean cosine of g with the second reference gradient (NaN if none)"),
):
    register_metric(_f)
