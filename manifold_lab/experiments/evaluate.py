"""Per-model metrics at held-out points, against exact ground truth.

Every model of a sweep (and the exact Bayes-optimal model) is measured on the
same ``EvalSet``: the same noise-free points on the manifold, the same noisy
accuracy samples and the same Gaussian noise draws (common random numbers), so
differences between models are not sampling noise of the evaluation.

The scalar function is ``f(x) = log p_model(y | x)`` of the point's true class
(``target="log_softmax"``), the quantity whose gradient Theorem 3.2 and the
score comparison are about.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from manifold_lab.experiments.build import derive_seed, make_generator
from manifold_lab.experiments.presets import EvalSpec

__all__ = ["EvalSet", "make_eval_set", "evaluate_model", "theorem_table"]

#: Targets of the exact references are computed in float64, then cast.
_REFERENCE_DTYPE = torch.float64


@dataclass
class EvalSet:
    """Held-out evaluation data, shared by every model of a sweep.

    Attributes
    ----------
    x : Tensor, shape [n, d]
        Noise-free points on the manifold (``dist.sample(on_manifold=True)``).
    y : Tensor, shape [n]
        Their classes.
    basis : Tensor, shape [n, d, k]
        Orthonormal tangent bases at ``x``.
    bayes_grad : Tensor, shape [n, d]
        Exact ``grad_x log p(y | x)`` of the data distribution (the Bayes-optimal
        gradient = class-conditional score minus marginal score).
    cond_score : Tensor, shape [n, d]
        Exact class-conditional score ``grad_x log p(x | y)``.
    x_acc : Tensor, shape [m, d]
        Noisy held-out samples of the data distribution (accuracy, NLL).
    y_acc : Tensor, shape [m]
    x64, basis64 : Tensor
        ``x`` and ``basis`` in float64 (the Theorem 3.1 table).
    """

    x: torch.Tensor
    y: torch.Tensor
    basis: torch.Tensor
    bayes_grad: torch.Tensor
    cond_score: torch.Tensor
    x_acc: torch.Tensor
    y_acc: torch.Tensor
    x64: torch.Tensor
    basis64: torch.Tensor


def make_eval_set(dist, spec: EvalSpec, *, seed: int, device="cpu",
                  dtype: torch.dtype = torch.float32) -> EvalSet:
    """Draw the held-out points of a run (deterministic in ``seed``).

    Exact references are computed in float64 on the CPU, then cast to ``dtype``
    and moved to ``device``.
    """
    gen = make_generator(derive_seed(seed, "eval-points"))
    x, y = dist.sample(spec.n_points, generator=gen, dtype=_REFERENCE_DTYPE, on_manifold=True)
    basis = dist.manifold.tangent_basis(x)
    bayes_grad = dist.posterior_grad(x, y)
    cond_score = dist.class_score(x)[torch.arange(x.shape[0]), y]
    gen_acc = make_generator(derive_seed(seed, "eval-accuracy"))
    x_acc, y_acc = dist.sample(spec.n_accuracy, generator=gen_acc, dtype=_REFERENCE_DTYPE)

    def cast(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device)
        return t.to(dtype) if t.is_floating_point() else t

    return EvalSet(*(cast(t) for t in (x, y, basis, bayes_grad, cond_score, x_acc, y_acc)),
                   x64=x.to(device), basis64=basis.to(device))


def _sigma_index(spec: EvalSpec) -> int:
    return min(range(len(spec.sigmas)), key=lambda i: abs(spec.sigmas[i] - spec.sigma))


def _mean(t: torch.Tensor) -> float:
    return float(t.double().mean())


def evaluate_model(model: torch.nn.Module, es: EvalSet, spec: EvalSpec, *, seed: int) -> dict:
    """All metrics of one model (the sweep row's metric fields).

    Returns
    -------
    dict
        - ``accuracy``, ``nll``: on the noisy held-out samples ``x_acc``;
        - ``on_robustness``, ``off_robustness`` (+ ``_stderr``): Def. 1 ``R_T``,
          ``R_N`` at ``spec.sigma``, means over points and ``spec.n_samples``
          draws; ``off_on_ratio`` = ``R_N / R_T``; ``robustness_curve``: the same
          at every ``spec.sigmas``;
        - ``alignment_ratio``: Def. 2 pooled over points,
          ``sum ||P_N g||^2 / sum ||P_T g||^2`` — the sigma -> 0 limit of the pooled
          ``R_N / R_T`` (Theorem 3.1 summed over points); ``alignment_ratio_median``:
          median of the per-point ``A(x)`` (heavy-tailed where ``P_T g`` is small);
        - ``tangent_fraction``: mean of ``||P_T g|| / ||g||`` (chance: ``sqrt(k/d)``);
        - ``score_cosine``: mean cosine of ``g`` with the exact Bayes-optimal
          gradient; ``cond_score_cosine``: with the class-conditional score.

        ``g = grad_x log p_model(y | x)`` at the on-manifold points.
    """
    from manifold_lab import metrics

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            log_p = torch.log_softmax(model(es.x_acc), dim=-1)
        accuracy = _mean((log_p.argmax(-1) == es.y_acc).to(torch.float64))
        nll = -_mean(log_p[torch.arange(es.y_acc.shape[0]), es.y_acc])

        grad = metrics.input_gradient(model, es.x, es.y, target="log_softmax").detach()
        tau = metrics.tangent_fraction(grad, es.basis)
        g2 = grad.double().pow(2).sum(-1)
        tan2 = (tau.double() ** 2 * g2).sum()
        pooled_alignment = float((g2.sum() - tan2) / tan2) if tan2 > 0 else math.inf
        per_point_alignment = metrics.alignment_ratio(grad, es.basis)

        f = metrics.scalar_fn(model, es.y, target="log_softmax")
        rob = metrics.manifold_robustness(
            f, es.x, es.basis, torch.tensor(spec.sigmas, dtype=es.x.dtype, device=es.x.device),
            n_samples=spec.n_samples,
            generator=make_generator(derive_seed(seed, "robustness-noise"), es.x.device),
        )
    finally:
        model.train(was_training)

    i = _sigma_index(spec)
    on, off = float(rob.on[i]), float(rob.off[i])
    curve = {
        "sigmas": list(spec.sigmas),
        "on": [float(v) for v in rob.on],
        "off": [float(v) for v in rob.off],
        "on_stderr": [float(v) for v in rob.on_stderr],
        "off_stderr": [float(v) for v in rob.off_stderr],
    }
    return {
        "accuracy": accuracy,
        "nll": nll,
        "on_robustness": on,
        "off_robustness": off,
        "on_stderr": float(rob.on_stderr[i]),
        "off_stderr": float(rob.off_stderr[i]),
        "off_on_ratio": off / on if on > 0 else math.inf,
        "alignment_ratio": pooled_alignment,
        "alignment_ratio_median": float(per_point_alignment.double().median()),
        "tangent_fraction": _mean(tau),
        "score_cosine": _mean(metrics.score_cosine(grad, es.bayes_grad)),
        "cond_score_cosine": _mean(metrics.score_cosine(grad, es.cond_score)),
        "robustness_curve": curve,
    }


def theorem_table(model: torch.nn.Module, es: EvalSet, spec: EvalSpec, *, seed: int) -> dict:
    """Theorem 3.1 for one model: ``R_N/R_T`` against ``A(x)`` as sigma shrinks.

    Uses the first ``spec.theorem_points`` held-out points and
    ``spec.theorem_samples`` draws per point, in float64 on a copy of the model
    (in float32 the change ``f(x + u) - f(x)`` at sigma = 1e-3 is rounding noise,
    which would hide the sigma^2 convergence); returns ``{"rows": [...],
    "markdown": str}`` from ``metrics.theorem_3_1_table``.
    """
    from manifold_lab import metrics

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
