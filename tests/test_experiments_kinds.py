"""Every registered data kind fills the reference interface; specs and registries
refuse bad input with one-line errors."""

import dataclasses
import math

import pytest
import torch

from experiments_fakes import TINY
from manifold_lab.experiments.build import build_model, training_data
from manifold_lab.experiments.evaluate import make_eval_set
from manifold_lab.experiments.kinds import KINDS, VmfSphereSpec, data_spec_from_dict, kind_class
from manifold_lab.experiments.metric_fields import MetricField, register_metric
from manifold_lab.experiments.presets import ModelSpec, get_preset, preset_to_dict
from manifold_lab.experiments.reference import DataSpec
from manifold_lab.experiments.sweep import job_cost, plan_jobs
from manifold_lab.training import REGULARIZERS, objective_class

#: A small instance of each built-in kind.
SMALL = {
    "vmf_sphere": dict(ambient_dim=12, intrinsic_dim=2, n_classes=3, noise_std=0.05),
    "signal_distractor": dict(ambient_dim=12, intrinsic_dim=2, distractor_dim=2, n_classes=3,
                              noise_std=0.1),
}


def test_every_builtin_kind_has_a_small_instance_here():
    assert set(SMALL) <= set(KINDS) and {"vmf_sphere", "signal_distractor"} <= set(SMALL)


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_kind_fills_the_reference_interface(kind):
    spec = kind_class(kind)(**SMALL[kind])
    reference = spec.build(3)
    es = make_eval_set(reference, dataclasses.replace(TINY.eval, n_points=8, n_accuracy=16),
                       seed=3, dtype=torch.float64)
    d = spec.ambient_dim
    assert es.x.shape == (8, d) and es.y.shape == (8,) and es.x_acc.shape == (16, d)
    k = es.basis.shape[-1]
    gram = es.basis.transpose(-1, -2) @ es.basis
    torch.testing.assert_close(gram, torch.eye(k, dtype=torch.float64).expand(8, k, k))
    assert es.score.shape == (8, d)
    # Exact kinds: the reference gradient is the reference model's autograd gradient.
    model = reference.reference_model().double()
    x = es.x.clone().requires_grad_(True)
    log_p = torch.log_softmax(model(x), -1)[torch.arange(8), es.y].sum()
    (grad,) = torch.autograd.grad(log_p, x)
    torch.testing.assert_close(grad, es.score, rtol=1e-8, atol=1e-10)
    x_tr, y_tr = training_data(reference, TINY.train, seed=0)
    assert x_tr.dtype == torch.float32 and x_tr.shape == (TINY.train.n_train, d)
    net = build_model(TINY.model, spec, seed=0)
    assert net(x_tr[:2]).shape == (2, spec.n_classes)
    assert data_spec_from_dict(preset_to_dict(dataclasses.replace(TINY, data=spec))["data"]) == spec


def test_same_seed_same_reference_other_seed_other_geometry():
    spec = VmfSphereSpec(**SMALL["vmf_sphere"])
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = spec.build(0).eval_points(4, generator=gen())[0]
    assert torch.equal(a, spec.build(0).eval_points(4, generator=gen())[0])
    assert not torch.equal(a, spec.build(1).eval_points(4, generator=gen())[0])


def test_model_spec_names_any_registered_model():
    spec = VmfSphereSpec(**SMALL["vmf_sphere"])
    a = build_model(ModelSpec("MLP", {"hidden": (5,)}), spec, seed=0)
    b = build_model(ModelSpec("MLP", {"hidden": (5,)}), spec, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.hidden == (5,)
    with pytest.raises(ValueError, match="ModelSpec.name must be one of"):
        ModelSpec("Transformer", {})


@pytest.mark.parametrize("bad, match", [
    (dict(data={"kind": "vmf_sphere"}), "data kind spec"),
    (dict(sweep=(("dropout", (0.1,)),)), "unknown regulariser 'dropout'"),
    (dict(sweep=(("gradient_norm", (True,)),)), "strength must be a number"),
    (dict(sweep=(("gradient_norm", (-1.0,)),)), "strength must be finite and >= 0"),
    (dict(sweep=(("gradient_norm",),)), "a sweep entry is"),
    (dict(sweep=(("none", (0.1,)),)), "always trained"),
    (dict(sweep=(("pgd_l2", (0.1,), ("steps", 3)),)), "options must be a dict"),
])
def test_preset_refuses_bad_specs(bad, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **bad)


def test_unknown_kind_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown data kind 'fashion'"):
        data_spec_from_dict({"kind": "fashion"})
    with pytest.raises(ValueError, match="does not fit data kind"):
        data_spec_from_dict({"kind": "vmf_sphere", "radius": 2})


@pytest.mark.parametrize("name", sorted(REGULARIZERS))
def test_every_regulariser_declares_its_sweep_metadata(name):
    cls = objective_class(name)
    assert cls.regularizer == name and cls.strength_meaning
    assert math.isfinite(cls.relative_cost) and cls.relative_cost > 0
    assert (cls.strength_parameter is None) == (name == "none")


def test_sweep_starts_expensive_jobs_first_and_keeps_the_job_ids():
    preset = get_preset("toy_sphere", quick=True)
    jobs = plan_jobs(preset, 0)
    assert jobs[0].id == "bayes_optimal" and job_cost(jobs[0]) == 0
    assert [j.id for j in jobs[1:3]] == ["none-s0", "gradient_norm-00-s0"]
    assert {j.id for j in jobs} >= {"pgd_l2-03-s0", "smoothness-01-s0"}
    pgd = next(j for j in jobs if j.regularizer == "pgd_l2")
    assert dict(pgd.options) == {"steps": 3}
    assert max(jobs, key=job_cost).regularizer == "pgd_l2"


def test_a_duplicate_metric_name_is_refused():
    with pytest.raises(ValueError, match="already declared"):
        register_metric(MetricField("accuracy", lambda m: 0.0))


def test_the_abstract_spec_cannot_be_built():
    with pytest.raises(TypeError):
        DataSpec()
