"""Extending the experiment layer without editing it (issue 9): a test-only
regulariser, a test-only metric and a test-only data kind whose regime
reference is the unregularised models, each registered at run time and
visible in results.json, models.csv and the summary table."""

import csv
import dataclasses
import io
import json
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from experiments_fakes import TINY
from manifold_lab import data, manifolds
from manifold_lab.experiments.kinds import ExactReference, register_kind, unregister_kind
from manifold_lab.experiments.metric_fields import MetricField, register_metric, unregister_metric
from manifold_lab.experiments.pipeline import run_experiment
from manifold_lab.experiments.reference import UNREGULARISED, DataSpec
from manifold_lab.experiments.seeds import derive_seed
from manifold_lab.training import Objective, register_objective, unregister_objective
from manifold_lab.training.objectives.base import accuracy, check_weight


class LogitPenalty(Objective):
    """Cross-entropy plus ``weight * mean |z|^power`` (a test-only regulariser)."""

    name = "logit_penalty"
    regularizer = "logit_penalty"
    strength_parameter = "weight"
    strength_meaning = "weight of the mean |logit|^power penalty"
    relative_cost = 1.5

    def __init__(self, weight, power=2):
        self.weight, self.power = check_weight("weight", weight), int(power)

    def __call__(self, model, x, y, *, generator=None):
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        return ce + self.weight * logits.abs().pow(self.power).mean(), {"acc": accuracy(logits, y)}

    def config(self):
        return {"name": self.name, "weight": self.weight, "power": self.power}


def _grad_norm(m):
    return float(torch.linalg.vector_norm(m.grad.double(), dim=-1).mean())


@pytest.fixture
def extended():
    register_objective(LogitPenalty)
    register_metric(MetricField("grad_norm", _grad_norm, "{:.3g}", "|g|", "mean ||g||"))
    yield
    unregister_objective("logit_penalty")
    unregister_metric("grad_norm")


def test_a_registered_regulariser_and_metric_reach_every_report(extended, tmp_path):
    preset = dataclasses.replace(
        TINY, sweep=(("logit_penalty", (0.01, 10.0), {"power": 2}),), theorem_models=())
    results = run_experiment(preset, tmp_path, jobs=1, progress=False, figures=True)
    stored = json.loads((tmp_path / "results.json").read_text())
    rows = [r for r in stored["models"] if r["regularizer"] == "logit_penalty"]
    assert [r["strength"] for r in rows] == [0.01, 10.0]
    assert stored["config"]["strength_meaning"]["logit_penalty"] == LogitPenalty.strength_meaning
    assert stored["config"]["sweep"] == [["logit_penalty", [0.01, 10.0], {"power": 2}]]
    # A strong logit penalty flattens the model: its gradients shrink.
    assert rows[1]["grad_norm"] < rows[0]["grad_norm"]
    # The Bayes row's new field is the norm of the exact Bayes gradient (float32 casts).
    reference = preset.data.build(0)
    from manifold_lab.experiments.evaluate import make_eval_set

    es = make_eval_set(reference, preset.eval, seed=0, dtype=torch.float64)
    exact = float(torch.linalg.vector_norm(es.score, dim=-1).mean())
    assert stored["bayes_optimal"]["grad_norm"] == pytest.approx(exact, rel=1e-4)
    group = next(g for g in stored["groups"] if g["regularizer"] == "logit_penalty")
    assert {"grad_norm", "grad_norm_min", "grad_norm_max"} <= set(group)
    table = list(csv.DictReader(io.StringIO((tmp_path / "models.csv").read_text())))
    assert "grad_norm" in table[0]
    assert float(table[-1]["grad_norm"]) == rows[1]["grad_norm"]
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    assert "|g|" in summary[0].split()
    assert any(line.startswith("logit_penalty") for line in summary)
    assert (tmp_path / "fig_logit_penalty.png").exists()
    assert results["claims"].keys() == {"logit_penalty"}


def test_sweep_options_reach_the_objective(extended, tmp_path):
    from manifold_lab.experiments.sweep import plan_jobs, run_job

    preset = dataclasses.replace(TINY, sweep=(("logit_penalty", (1.0,), {"power": 1}),
                                              ("pgd_l2", (0.1,), {"steps": 1})))
    jobs = {j.id: j for j in plan_jobs(preset, 0)}
    assert jobs["logit_penalty-00-s0"].options == (("power", 1),)
    assert jobs["pgd_l2-00-s0"].options == (("steps", 1),)
    job = jobs["logit_penalty-00-s0"]
    power1 = run_job(preset, job, 0, "cpu")
    power2 = run_job(preset, dataclasses.replace(job, options=(("power", 2),)), 0, "cpu")
    assert power1["nll"] != power2["nll"]


def test_unknown_regulariser_in_a_sweep_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown regulariser 'dropout'"):
        dataclasses.replace(TINY, sweep=(("dropout", (0.1,)),))


@register_kind
@dataclass(frozen=True)
class LearnedSphereSpec(DataSpec):
    """A test-only stand-in for a learned kind: no reference model, no second
    score; the score is the class-conditional score (what a learned denoiser
    estimates), and the regime reference is the unregularised models."""

    kind = "test_learned_sphere"
    regime_reference = UNREGULARISED

    ambient_dim: int
    n_classes: int

    def build(self, seed, *, cache_dir=None):
        return _LearnedReference(data.VonMisesFisherMixture(
            manifolds.Sphere(2, self.ambient_dim, seed=derive_seed(seed, "sphere")),
            self.n_classes, 4.0, 0.05, seed=derive_seed(seed, "vmf")))

    def model_inputs(self):
        return {"in_dim": self.ambient_dim, "n_classes": self.n_classes}


class _LearnedReference(ExactReference):
    def reference_gradients(self, x, y):
        return self.dist.class_score(x)[torch.arange(x.shape[0]), y], None

    def reference_model(self):
        raise AssertionError("a kind without a reference model must never be asked for one")


@pytest.fixture
def learned_kind():
    yield LearnedSphereSpec(ambient_dim=24, n_classes=3)
    unregister_kind(LearnedSphereSpec.kind)


def test_a_kind_whose_regime_reference_is_the_unregularised_models(learned_kind, tmp_path):
    preset = dataclasses.replace(TINY, data=learned_kind, sweep=TINY.sweep[:1], n_seeds=2)
    results = run_experiment(preset, tmp_path, jobs=1, progress=False, figures=True)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["config"]["reference"] == "unregularised"
    assert stored["config"]["data"] == {"kind": "test_learned_sphere", "ambient_dim": 24,
                                        "n_classes": 3}
    assert stored["bayes_optimal"] is None
    assert len(stored["models"]) == preset.n_models
    assert not (tmp_path / "models" / "bayes_optimal.json").exists()
    unreg = [r for r in stored["models"] if r["regularizer"] == "none"]
    mean_on = sum(r["on_robustness"] for r in unreg) / len(unreg)
    for row in stored["models"]:
        assert row["on_relative"] == pytest.approx(row["on_robustness"] / mean_on, rel=1e-12)
        assert row["cond_score_cosine"] is None  # no second reference: NaN -> null
        assert -1.0 <= row["score_cosine"] <= 1.0
    assert sum(r["on_relative"] for r in unreg) / len(unreg) == pytest.approx(1.0, rel=1e-12)
    summary = (tmp_path / "summary.txt").read_text()
    assert "bayes_optimal" not in summary and "(reference)" not in summary
    assert [t["model"] for t in results["theorem_3_1"]] == ["none-s0"]
    assert (tmp_path / "fig_sigma_curves.png").exists()
