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
docs/extending.md); ``header`` puts it in the summary table. A field with
``needs="<key>"`` is computed only where the run's ``EvalSet.extras`` has that
key (what a data kind adds, e.g. the image shape of image kinds), so kinds that
do not provide it keep their rows unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import torch

from manifold_lab import metrics
from manifold_lab.experiments.seeds import derive_seed, make_generator

if TYPE_CHECKING:
    from manifold_lab.experiments.specs import EvalSpec

__all__ = ["MetricField", "Measurement", "register_metric", "unregister_metric", "metric_fields",
           "model_fields", "regime_fields", "numeric_field_names", "paper_curve", "half_curve", "gallery_curve",
           "bayes_grad_curve",
           "half_sensitivity"]


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
        """``g = grad_x log p_model(y | x)`` at the held-out points, flattened: shape [n, d]
        (``d = c h w`` for images)."""
        g = metrics.input_gradient(self.model, self.es.x, self.es.y, target="log_softmax").detach()
        return g.reshape(g.shape[0], -1)

    @cached_property
    def grad_sum_logits(self) -> torch.Tensor:
        """``grad_x sum_c z_c(x)``, the gradient of the sum of logits that the paper's
        released code compares with the score, flattened: shape [n, d]."""
        g = metrics.input_gradient(self.model, self.es.x, None, target="sum_logits").detach()
        return g.reshape(g.shape[0], -1)

    @cached_property
    def score_grad_sum_logits(self) -> torch.Tensor:
        """``grad_x sum_c z_c`` in the space of the reference score (as ``score_grad``)."""
        to_score_space = self.es.extras.get("to_score_space")
        g = self.grad_sum_logits
        return g if to_score_space is None else to_score_space(g).reshape(g.shape[0], -1)

    @cached_property
    def score_grad(self) -> torch.Tensor:
        """``g`` in the space of the reference score: ``extras["to_score_space"](g)`` where
        the kind's score lives at another resolution (ImageNet: the antialiased downsample
        of the 224 px gradient to the score model's 64 px, ``learned.resolution``), else
        ``g`` itself: shape [n, D_s]."""
        to_score_space = self.es.extras.get("to_score_space")
        return self.grad if to_score_space is None else to_score_space(self.grad).reshape(self.grad.shape[0], -1)

    @cached_property
    def tau(self) -> torch.Tensor:
        """Tangent fractions ``||P_T g|| / ||g||``, shape [n]."""
        return metrics.tangent_fraction(self.grad, self.es.basis, zero="nan")  # rows store null

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

    @cached_property
    def paper(self):
        """The paper's unit-direction robustness (``metrics.directional_robustness``,
        softmax-L1) at every ``extras["paper_eps"]``, ``extras["n_directions"]``
        directions per point (one direction seed for every model)."""
        es = self.es
        return metrics.directional_robustness(
            self.model, es.x, es.basis, es.extras["paper_eps"], n_directions=es.extras["n_directions"],
            distance="softmax_l1",
            generator=make_generator(derive_seed(self.seed, "paper-directions"), es.x.device))

    @cached_property
    def halves(self) -> dict:
        """Softmax-L1 change under Gaussian noise on one half of each image only
        (``extras["halves"]``: ``{"signal": mask [n, D], "distractor": mask [n, D]}``),
        at every ``extras["half_sigmas"]``: ``{"sigmas", "signal", "distractor"}``,
        the means over points and ``spec.n_samples`` draws (the same draws for both
        halves and every model)."""
        es = self.es
        return half_sensitivity(self.model, es.x, es.extras["halves"], es.extras["half_sigmas"],
                                self.spec.n_samples, seed=self.seed)

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
    needs : str, tuple of str, or None
        Key(s) of ``EvalSet.extras`` the field needs; ``None``: every kind has it.
        A field whose keys are not all there is left out of the row (not NaN).
    """

    name: str
    compute: Callable[[Measurement], float] | None
    fmt: str = "{:.3f}"
    header: str | None = None
    doc: str = ""
    needs: str | tuple[str, ...] | None = None

    def applies(self, extras: dict | None) -> bool:
        """Whether the field is computed for an ``EvalSet`` with these ``extras``."""
        if self.needs is None:
            return True
        keys = (self.needs,) if isinstance(self.needs, str) else self.needs
        return extras is not None and all(k in extras for k in keys)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.inf


def _accuracy(m: Measurement) -> float:
    return _mean((m.log_p_acc.argmax(-1) == m.es.y_acc).to(torch.float64))


def _nll(m: Measurement) -> float:
    return -_mean(m.log_p_acc[torch.arange(m.es.y_acc.shape[0]), m.es.y_acc])


def _cosine_with(second: bool) -> Callable[[Measurement], float]:
    def compute(m: Measurement) -> float:
        ref = m.es.second_score if second else m.es.score
        return math.nan if ref is None else _mean(metrics.score_cosine(m.score_grad, ref.reshape(m.score_grad.shape)))
    return compute


def half_sensitivity(model, x: torch.Tensor, halves: dict, sigmas, n_samples: int, *, seed: int) -> dict:
    """Mean softmax-L1 change ``||softmax(z(x + m * u)) - softmax(z(x))||_1``,
    ``u ~ N(0, sigma^2 I)``, over points and ``n_samples`` draws, for the mask ``m``
    of each half.

    Parameters
    ----------
    model : callable
        ``[n, ...] -> logits [n, C]``.
    x : Tensor, shape [n, ...]
    halves : dict
        ``{"signal": mask [n, D], "distractor": mask [n, D]}`` (bool), ``D`` = numel per point.
    sigmas : sequence of float
    n_samples : int
    seed : int
        Noise seed; the same draws serve both halves and every sigma.

    Returns
    -------
    dict
        ``{"sigmas": [S], "signal": [S], "distractor": [S]}``.
    """
    flat = x.reshape(x.shape[0], -1)
    sigmas = tuple(float(s) for s in sigmas)
    gen = make_generator(derive_seed(seed, "half-noise"), x.device)
    noise = torch.randn((n_samples, *flat.shape), generator=gen, device=x.device, dtype=flat.dtype)
    out = {"sigmas": list(sigmas), "signal": [], "distractor": []}
    with torch.no_grad():
        clean = torch.softmax(model(x), -1)
        for half in ("signal", "distractor"):
            mask = halves[half].to(flat)
            for sigma in sigmas:
                changes = [(torch.softmax(model((flat + sigma * mask * u).reshape(x.shape)), -1)
                            - clean).abs().sum(-1) for u in noise]
                out[half].append(_mean(torch.stack(changes)))
    return out


def paper_curve(m: Measurement) -> dict:
    """The paper-variant robustness at every step: ``{"eps", "on", "off"}`` (a row curve)."""
    rob = m.paper
    return {"eps": [float(e) for e in rob.eps], "on": [float(v) for v in rob.on],
            "off": [float(v) for v in rob.off]}


#: Significant digits of the gallery images kept in rows (figures only).
_GALLERY_DIGITS = 4


def gallery_curve(m: Measurement) -> dict:
    """The first ``extras["gallery_images"]`` held-out images, the reference score
    and this model's input gradients there (of ``log p(y|x)`` and of the sum of
    logits), flattened and rounded (the gradient gallery figure): ``{"shape",
    "images", "score", "gradient", "gradient_sum_logits"}`` and, where the kind
    has it, the paper protocol's score ``"paper_score"``."""
    n = min(m.es.extras["gallery_images"], m.es.x.shape[0])

    def rows(t):
        return [[float(f"{v:.{_GALLERY_DIGITS}g}") for v in r] for r in t[:n].reshape(n, -1).double().tolist()]
    out = {"shape": list(m.es.extras["image_shape"]), "images": rows(m.es.x), "score": rows(m.es.score),
           "gradient": rows(m.grad), "gradient_sum_logits": rows(m.grad_sum_logits)}
    for key in ("paper_score", "bayes_grad"):
        if key in m.es.extras:
            out[key] = rows(m.es.extras[key])
    return out


def half_curve(m: Measurement) -> dict:
    """Signal and distractor sensitivity at every sigma (a row curve)."""
    return m.halves


def _paper_at(name: str) -> Callable[[Measurement], float]:
    def compute(m: Measurement) -> float:
        return float(getattr(m.paper, name)[m.es.extras["paper_eps_index"]])
    return compute


def _half_at(half: str) -> Callable[[Measurement], float]:
    def compute(m: Measurement) -> float:
        return m.halves[half][m.es.extras["half_sigma_index"]]
    return compute


def _as_images(m: Measurement, paper: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient and score as images ``[n, c, h, w]``: ours (``paper=False``) is
    ``grad log p(y|x)`` (in the score's space, ``Measurement.score_grad``) and the
    reference score; the paper's is ``grad sum_c z_c`` and ``extras["paper_score"]``."""
    extras = m.es.extras
    shape = (m.grad.shape[0], *extras.get("score_image_shape", extras["image_shape"]))
    if paper:
        return m.score_grad_sum_logits.reshape(shape), extras["paper_score"].reshape(shape)
    return m.score_grad.reshape(shape), m.es.score.reshape(shape)


def _ssim(paper: bool) -> Callable[[Measurement], float]:
    def compute(m: Measurement) -> float:
        return _mean(metrics.ssim_similarity(*_as_images(m, paper)))
    return compute


def _lpips(paper: bool) -> Callable[[Measurement], float]:
    """``1 - LPIPS``-AlexNet of gradient and score, each max-abs normalised (the paper's
    measure), with the loaded network ``extras["lpips"]``; images are resized to
    ``extras["lpips_size"]`` px first when a kind sets it (at 28 px AlexNet's deeper maps
    would be empty)."""
    def compute(m: Measurement) -> float:
        net = m.es.extras["lpips"].to(device=m.grad.device, dtype=m.grad.dtype)
        return _mean(metrics.lpips_similarity(*_as_images(m, paper), model=net,
                                              upsample_to=m.es.extras.get("lpips_size")))
    return compute


def _sum_logits_cosine(m: Measurement) -> float:
    g = m.score_grad_sum_logits
    return _mean(metrics.score_cosine(g, m.es.extras["paper_score"].reshape(g.shape)))


def _bayes_grad_cosine(m: Measurement) -> float:
    return _mean(metrics.score_cosine(m.grad, m.es.extras["bayes_grad"].reshape(m.grad.shape)))


def _bayes_images(m: Measurement) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (m.grad.shape[0], *m.es.extras["image_shape"])
    return m.grad.reshape(shape), m.es.extras["bayes_grad"].reshape(shape)


def _bayes_grad_ssim(m: Measurement) -> float:
    return _mean(metrics.ssim_similarity(*_bayes_images(m)))


def _bayes_grad_lpips(m: Measurement) -> float:
    net = m.es.extras["lpips"].to(device=m.grad.device, dtype=m.grad.dtype)
    return _mean(metrics.lpips_similarity(*_bayes_images(m), model=net, upsample_to=m.es.extras.get("lpips_size")))


def bayes_grad_curve(m: Measurement) -> dict:
    """Mean cosine of ``g = grad log p(y|x)`` with the learned Bayes gradient at every
    ``extras["bayes_grad_by_sigma"]`` noise level (a row curve): ``{"sigmas", "cosine"}``;
    a model trained with noise at sigma should peak near its own sigma."""
    by_sigma = m.es.extras["bayes_grad_by_sigma"]
    sigmas = sorted(by_sigma)
    return {"sigmas": sigmas, "cosine": [_mean(metrics.score_cosine(m.grad, by_sigma[s].reshape(m.grad.shape)))
                                         for s in sigmas]}


def _avg_score_cosine(m: Measurement) -> float:
    return _mean(metrics.score_cosine(m.score_grad, m.es.extras["avg_score"].reshape(m.score_grad.shape)))


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


def model_fields(extras: dict | None = None) -> tuple[MetricField, ...]:
    """Fields computed per model by ``evaluate_model`` for an ``EvalSet`` with these
    ``extras`` (default none: the fields every kind has)."""
    return tuple(f for f in _FIELDS.values() if f.compute is not None and f.applies(extras))


def regime_fields() -> tuple[MetricField, ...]:
    """Fields filled in at assembly from the regime reference."""
    return tuple(f for f in _FIELDS.values() if f.compute is None)


def numeric_field_names() -> tuple[str, ...]:
    """Model fields (kind-specific ones included), then regime fields: the numbers of a
    row (CSV and seed-group order; reports keep those present in the rows)."""
    return tuple(f.name for f in (*(f for f in _FIELDS.values() if f.compute is not None),
                                  *regime_fields()))


for _f in (
    MetricField("accuracy", _accuracy, "{:.3f}", "acc",
                "accuracy on the held-out samples (exact kinds: noisy samples; image kinds: test images)"),
    MetricField("nll", _nll,
                doc="mean -log p(y|x) on the held-out samples (exact kinds: noisy samples; image kinds: test images)"),
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
                lambda m: float(metrics.alignment_ratio(m.grad, m.es.basis, zero="nan").double().median()),
                doc="median of the per-point A(x)"),
    MetricField("tangent_fraction", lambda m: _mean(m.tau), "{:.3f}", "tau",
                "mean ||P_T g|| / ||g|| (chance sqrt(k/d))"),
    MetricField("score_cosine", _cosine_with(False), "{:.3f}", "cos",
                "mean cosine of g with the reference gradient"),
    MetricField("cond_score_cosine", _cosine_with(True), "{:.3f}", "cos_c",
                "mean cosine of g with the second reference gradient (NaN if none)"),
    MetricField("bayes_grad_cosine", _bayes_grad_cosine, "{:.3f}", "cos_B",
                "mean cosine of g with the Bayes-optimal gradient grad log p(y|x): exact kinds the exact one, "
                "image kinds the learned s_sigma(x|y) - s_sigma(x) at the score's sigma",
                needs="bayes_grad"),
    # Image kinds. Ours: g = grad log p(y|x) against the learned score at the clean image.
    MetricField("score_ssim", _ssim(False), "{:.3f}", "ssim",
                "mean SSIM of g and the reference score as images (each max-abs normalised)",
                needs="image_shape"),
    MetricField("score_lpips", _lpips(False), "{:.3f}", "lpips",
                "mean 1 - LPIPS-AlexNet of g and the score as images (max-abs normalised; only with local weights)",
                needs="lpips"),
    MetricField("bayes_grad_ssim", _bayes_grad_ssim, "{:.3f}", "ssim_B",
                "mean SSIM of g and the learned Bayes gradient as images (each max-abs normalised)",
                needs=("bayes_grad", "image_shape")),
    MetricField("bayes_grad_lpips", _bayes_grad_lpips, "{:.3f}", "lpips_B",
                "mean 1 - LPIPS-AlexNet of g and the learned Bayes gradient (max-abs normalised)",
                needs=("bayes_grad", "lpips")),
    MetricField("avg_score_cosine", _avg_score_cosine, "{:.3f}", "cos_avg",
                "mean cosine of g with the score averaged over noisy copies, E_u[s_sigma(x + u)]",
                needs="avg_score"),
    # The paper's released protocol: grad sum_c z_c against the score at sigma 0.25 ([0, 1]).
    MetricField("sum_logits_cosine", _sum_logits_cosine, "{:.3f}", "cos_Sz",
                "paper protocol: mean cosine of grad sum_c z_c with the score at sigma 0.25 at the clean image",
                needs="paper_score"),
    MetricField("sum_logits_ssim", _ssim(True), "{:.3f}", "ssim_Sz",
                "paper protocol: mean SSIM of grad sum_c z_c and the score at sigma 0.25 (max-abs normalised)",
                needs=("paper_score", "image_shape")),
    MetricField("sum_logits_lpips", _lpips(True), "{:.3f}", "lpips_Sz",
                "paper protocol: mean 1 - LPIPS-AlexNet of grad sum_c z_c and the score at sigma 0.25",
                needs=("paper_score", "lpips")),
    MetricField("paper_on", _paper_at("on"), "{:.2e}", "P_T",
                "paper variant: softmax-L1 change along a unit tangent direction at the documented eps",
                needs="paper_eps"),
    MetricField("paper_off", _paper_at("off"), "{:.2e}", "P_N",
                "paper variant: softmax-L1 change along a unit normal direction at the documented eps",
                needs="paper_eps"),
    MetricField("signal_sensitivity", _half_at("signal"), "{:.3f}", "S_sig",
                "softmax-L1 change under Gaussian noise on the signal half at the documented sigma",
                needs="halves"),
    MetricField("distractor_sensitivity", _half_at("distractor"), "{:.3f}", "S_dis",
                "softmax-L1 change under Gaussian noise on the distractor half at the documented sigma",
                needs="halves"),
):
    register_metric(_f)
