"""Per-model metrics at held-out points, against the data kind's ground truth.

Every model of a sweep (and the reference model, where the kind has one) is
measured on the same ``EvalSet``: the same held-out points, the same noisy
accuracy samples and the same Gaussian noise draws (common random numbers), so
differences between models are not sampling noise of the evaluation. The
ground truth (tangent bases, reference gradients) comes from the kind's
``Reference`` (``experiments.reference``); the metric fields from
``experiments.metric_fields``.

The scalar function is ``f(x) = log p_model(y | x)`` of the point's true class
(``target="log_softmax"``), the quantity whose gradient Theorem 3.2 and the
score comparison are about.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from manifold_lab import metrics
from manifold_lab._modes import eval_mode
from manifold_lab.experiments.metric_fields import Measurement, model_fields
from manifold_lab.experiments.specs import EvalSpec
from manifold_lab.experiments.reference import Reference
from manifold_lab.experiments.seeds import derive_seed, make_generator

__all__ = ["EvalSet", "make_eval_set", "evaluate_model", "theorem_table"]


@dataclass
class EvalSet:
    """Held-out evaluation data, shared by every model of a sweep.

    Attributes
    ----------
    x : Tensor, shape [n, d]
        Held-out points (exact kinds: noise-free, on the manifold).
    y : Tensor, shape [n]
        Their classes.
    basis : Tensor, shape [n, d, k]
        Orthonormal tangent bases at ``x``.
    score : Tensor, shape [n, d]
        The reference gradient (exact kinds: ``grad_x log p(y | x)`` of the data,
        the Bayes-optimal gradient).
    second_score : Tensor, shape [n, d], or None
        The second reference (exact kinds: the class-conditional score
        ``grad_x log p(x | y)``).
    x_acc : Tensor, shape [m, d]
        Noisy held-out samples of the data distribution (accuracy, NLL).
    y_acc : Tensor, shape [m]
    x64, basis64 : Tensor or None
        ``x`` and ``basis`` in float64 (the Theorem 3.1 table); ``None`` when
        ``make_eval_set(..., float64=False)``.
    extras : dict
        What the data kind adds for its own metric fields (``Reference.eval_extras``;
        ``MetricField.needs`` names a key) and ``"curves"``: ``{name: fn(measurement)
        -> dict}`` stored in each model row. Empty for exact kinds.
    """

    x: torch.Tensor
    y: torch.Tensor
    basis: torch.Tensor
    score: torch.Tensor
    second_score: torch.Tensor | None
    x_acc: torch.Tensor
    y_acc: torch.Tensor
    x64: torch.Tensor | None
    basis64: torch.Tensor | None
    extras: dict = field(default_factory=dict)


def _basis64(basis: torch.Tensor) -> torch.Tensor:
    """``basis`` in float64; a lower-precision (learned) basis is re-orthonormalised
    (QR) so that it passes the float64 orthonormality check of the Theorem 3.1 table."""
    if basis.dtype == torch.float64:
        return basis
    return torch.linalg.qr(basis.to(torch.float64)).Q


def make_eval_set(reference: Reference, spec: EvalSpec, *, seed: int, device="cpu",
                  dtype: torch.dtype = torch.float32, float64: bool = True) -> EvalSet:
    """Draw the held-out points of a run (deterministic in ``seed``).

    Reference quantities are computed in the reference's own precision on the
    CPU (float64 for exact kinds), then cast to ``dtype`` and moved to ``device``.
    ``float64=False`` skips the float64 copies ``x64``, ``basis64`` (``None``) that only
    the Theorem 3.1 table needs (for 100 ImageNet images the basis alone is 3.9 GB).
    """
    x, y = reference.eval_points(spec.n_points, generator=make_generator(derive_seed(seed, "eval-points")))
    basis = reference.tangent_basis(x)
    score, second = reference.reference_gradients(x, y)
    x_acc, y_acc = reference.accuracy_points(
        spec.n_accuracy, generator=make_generator(derive_seed(seed, "eval-accuracy")))

    def cast(t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        t = t.to(device)
        return t.to(dtype) if t.is_floating_point() else t

    return EvalSet(*(cast(t) for t in (x, y, basis, score, second, x_acc, y_acc)),
                   x64=x.to(device, torch.float64) if float64 else None,
                   basis64=_basis64(basis).to(device) if float64 else None,
                   extras=reference.eval_extras(x, y, device=device, dtype=dtype))


def evaluate_model(model: torch.nn.Module, es: EvalSet, spec: EvalSpec, *, seed: int) -> dict:
    """Every model field of ``metric_fields`` for one model, plus its robustness curve.

    Returns
    -------
    dict
        ``{field.name: float}`` for each model field (``accuracy``, ``nll``,
        ``on_robustness``, ``off_robustness`` (+ ``_stderr``), ``off_on_ratio``,
        ``alignment_ratio`` (Def. 2 pooled over points, the sigma -> 0 limit of
        the pooled ``R_N / R_T``), ``alignment_ratio_median``,
        ``tangent_fraction``, ``score_cosine``, ``cond_score_cosine``, and any
        registered later) and ``robustness_curve``: ``R_T``, ``R_N`` at every
        ``spec.sigmas``. ``g = grad_x log p_model(y | x)`` at the held-out points.
    """
    m = Measurement(model, es, spec, seed=seed)
    with eval_mode(model):
        row = {f.name: f.compute(m) for f in model_fields(es.extras)}
        rob = m.robustness
        # Kind-specific curves (e.g. sensitivity over sigma of image kinds): name -> fn(m).
        curves = {name: fn(m) for name, fn in es.extras.get("curves", {}).items()}
    row["robustness_curve"] = {
        "sigmas": list(spec.sigmas),
        "on": [float(v) for v in rob.on],
        "off": [float(v) for v in rob.off],
        "on_stderr": [float(v) for v in rob.on_stderr],
        "off_stderr": [float(v) for v in rob.off_stderr],
    }
    row.update(curves)
    return row


def theorem_table(model: torch.nn.Module, es: EvalSet, spec: EvalSpec, *, seed: int) -> dict:
    """Theorem 3.1 for one model: ``R_N/R_T`` against ``A(x)`` as sigma shrinks.

    Uses the first ``spec.theorem_points`` held-out points and
    ``spec.theorem_samples`` draws per point, in float64 on a copy of the model
    (in float32 the change ``f(x + u) - f(x)`` at sigma = 1e-3 is rounding noise,
    which would hide the sigma^2 convergence); returns ``{"rows": [...],
    "markdown": str}`` from ``metrics.theorem_3_1_table``.
    """
    n = min(spec.theorem_points, es.x.shape[0])
    model64 = copy.deepcopy(model).to(torch.float64).eval()
    x = es.x64[:n]
    f = metrics.scalar_fn(model64, es.y[:n], target="log_softmax")
    table = metrics.theorem_3_1_table(
        f, x, es.basis64[:n],
        torch.tensor(spec.theorem_sigmas, dtype=torch.float64, device=x.device),
        n_samples=spec.theorem_samples,
        generator=make_generator(derive_seed(seed, "theorem-noise"), x.device),
    )
    return {"rows": table.rows, "markdown": table.to_markdown()}
