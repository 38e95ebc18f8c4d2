"""Kind and preset cifar10: files in the exact cifar-10-batches-py format written here, a
test-sized run end to end (same row fields as fmnist), the CLI's one-line errors, a
pretrained diffusers score and local LPIPS weights, the paper-to-ours strength maps
against the paper's batch-level penalty (float64), and the real --quick run (slow)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from manifold_lab.experiments import TrainSpec, get_preset, run_experiment
from manifold_lab.experiments import paper_units
from manifold_lab.experiments.evaluate import evaluate_model, make_eval_set
from manifold_lab.experiments.kinds import Cifar10Spec, data_spec_from_dict
from manifold_lab.experiments.kinds._fitted_images import PAPER_CIFAR_EPS
from manifold_lab.experiments.presets import ModelSpec, preset_to_dict
from manifold_lab.experiments.sweep import REFERENCE_DIR
from manifold_lab.models import ResNet18
from manifold_lab.training import GradientNorm
from test_datasets_readers import write_cifar_folder
from test_image_kinds import _EVAL

ROOT = Path(__file__).resolve().parents[1]
_FITS = dict(n_fit=48, latent_dim=4, ae_epochs=1, ae_width=8, denoiser_epochs=1, denoiser_width=8,
             n_directions=2)
_TRAIN = TrainSpec(n_train=16, epochs=2, lr=0.025, batch_size=8, optimizer="sgd", weight_decay=5e-4,
                   lr_milestones=(0.5,), augment="crop_flip")
#: Fields every image-kind row has (fmnist's), besides the common ones.
_IMAGE_FIELDS = ("score_ssim", "paper_on", "paper_off", "paper_curve")


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_folder(root, n_per_batch=12, n_test=24)
    return root


def tiny_cifar(data_dir, **data):
    preset = get_preset("cifar10", quick=True)
    return dataclasses.replace(
        preset, data=Cifar10Spec(data_dir=str(data_dir), **{**_FITS, **data}),
        model=ModelSpec("ResNet18", {"width": 4}), train=_TRAIN, eval=_EVAL, n_seeds=1,
        sweep=tuple((n, v[:1], o) for n, v, o in preset.sweep))


def test_tiny_cifar_run_end_to_end_with_the_fmnist_schema(tmp_path, cifar_dir, tiny_fmnist_run):
    preset = tiny_cifar(cifar_dir)
    out = tmp_path / "run"
    results = run_experiment(preset, out, jobs=1, progress=False, figures=False)  # figures: the slow test
    assert results["config"]["reference"] == "unregularised" and results["bayes_optimal"] is None
    assert results["config"]["data"]["kind"] == "cifar10"
    assert {r["regularizer"] for r in results["models"]} == {"none", *preset.regularizers}
    # The same row fields as an fmnist run (files in its format, written here; conftest.tiny_fmnist_run).
    _, _, fm = tiny_fmnist_run
    assert set(results["models"][0]) == set(fm["models"][0])
    assert set(results) == set(fm)
    for row in results["models"]:
        for key in _IMAGE_FIELDS:
            assert key in row
        assert row["paper_curve"]["eps"] == pytest.approx(PAPER_CIFAR_EPS, rel=1e-6)  # the paper's own, unscaled
        assert "score_lpips" not in row  # no local LPIPS weights here
    fits = results["reference_fits"]
    assert fits["score_sigma"] == 0.25 and fits["score_model"] is None and fits["lpips_weights"] is None
    assert fits["paper_eps_documented"] == 2.64 and fits["fit_images"] == _FITS["n_fit"]
    assert len(list((out / REFERENCE_DIR).glob("denoiser-*.pt"))) == 1
    assert data_spec_from_dict(preset_to_dict(preset)["data"]) == preset.data
    assert json.loads((out / "gallery.json").read_text())["none-s0"]["shape"] == [3, 32, 32]


def _cli(capsys, *args):
    """``python -m manifold_lab.run ARGS`` in this process (a real process prints the same
    one line: tests/test_cli.py::test_a_real_process_prints_no_traceback)."""
    from manifold_lab.run import main

    code = main(list(args))
    return code, capsys.readouterr().err


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_cli_without_data_dir_is_a_one_line_error_before_any_run_file(capsys, tmp_path):
    code, err = _cli(capsys, "cifar10", "--quick", "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 2
    line = _one_line(err)
    assert "--data-dir" in line and "cifar-10-batches-py" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_cli_corrupt_or_missing_batch_is_a_one_line_error(capsys, tmp_path, how):
    folder = write_cifar_folder(tmp_path / "data", n_per_batch=2, n_test=4)
    victim = folder / "data_batch_3"
    if how == "corrupt":
        victim.write_bytes(victim.read_bytes()[:100])
    else:
        victim.unlink()
    code, err = _cli(capsys, "cifar10", "--quick", "--data-dir", str(tmp_path / "data"), "--out",
                     str(tmp_path / "run"), "--no-progress")
    assert code == 2
    line = _one_line(err)
    assert "data_batch_3" in line and ("corrupt" in line if how == "corrupt" else "not found" in line
                                       or "missing" in line or "no such" in line.lower())
    assert not (tmp_path / "run").exists()


def test_cli_data_dir_that_is_not_a_directory(capsys, tmp_path):
    code, err = _cli(capsys, "cifar10", "--quick", "--data-dir", str(tmp_path / "nowhere"), "--out",
                     str(tmp_path / "r"))
    assert code == 2 and "is not a directory" in _one_line(err)


def test_too_few_images_for_the_quick_preset_is_a_one_line_error(tmp_path, cifar_dir):
    preset = dataclasses.replace(get_preset("cifar10", quick=True),
                                 data=dataclasses.replace(get_preset("cifar10", quick=True).data,
                                                          data_dir=str(cifar_dir)))
    with pytest.raises(ValueError, match="data.n_fit = 400 asks for 400 training images but only 60") as info:
        run_experiment(preset, tmp_path / "run", progress=False, figures=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()


# ---- a user's pretrained DDPM and local LPIPS weights -----------------------------------


def test_diffusers_score_model_replaces_the_denoiser(tmp_path, cifar_dir):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)  # diffusers initialises from the global RNG; tests only
    unet = diffusers.UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4)
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    diffusers.DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(tmp_path / "ddpm")
    spec = Cifar10Spec(data_dir=str(cifar_dir), score_model=str(tmp_path / "ddpm"), **_FITS)
    ref = spec.build(0, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("denoiser-*.pt"))  # no denoiser fitted
    x, y = ref.eval_points(3, generator=torch.Generator().manual_seed(0))
    score, _ = ref.reference_gradients(x, y)
    # Reference: -eps_hat / sigma from the UNet at the timestep of sigma' = 2 * 0.25 = 0.5.
    abar = torch.cumprod(1 - sched.betas.double(), 0)
    t = int((((1 - abar) / abar).sqrt().log() - math.log(0.5)).abs().argmin())
    with torch.no_grad():
        eps = unet((2 * x - 1) / math.sqrt(1 + 0.5 ** 2), torch.full((3,), t)).sample
    torch.testing.assert_close(score, -(eps / 0.25).reshape(3, -1), rtol=1e-4, atol=1e-4)
    assert ref.fit_report()["score_model"] == str(tmp_path / "ddpm")
    # Loaded again from the cache: the same fits, no denoiser file expected.
    again = spec.build(0, cache_dir=tmp_path / "cache")
    assert again.fitted.quality == ref.fitted.quality


def test_missing_score_model_or_lpips_file_is_a_one_line_error(tmp_path, cifar_dir):
    for kwargs, match in (({"score_model": str(tmp_path / "none")}, "diffusion model directory"),
                          ({"lpips_linear": str(tmp_path / "alex.pth")}, "lpips_linear")):
        with pytest.raises((FileNotFoundError, ValueError), match=match) as info:
            run_experiment(tiny_cifar(cifar_dir, **kwargs), tmp_path / "run", progress=False)
        assert "\n" not in str(info.value)
        assert not (tmp_path / "run").exists()


def test_lpips_field_only_with_local_weights(tmp_path, cifar_dir):
    from test_metrics_perceptual import write_weights
    from manifold_lab.metrics import lpips_similarity

    write_weights(tmp_path)
    backbone, linear = tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "alex.pth"
    spec = Cifar10Spec(data_dir=str(cifar_dir), lpips_backbone=str(backbone), lpips_linear=str(linear), **_FITS)
    ref = spec.build(0)
    es = make_eval_set(ref, _EVAL, seed=0)
    model = ResNet18(3, 10, width=4, seed=1).eval()
    row = evaluate_model(model, es, _EVAL, seed=0)
    grad = torch.func.grad(lambda v: torch.log_softmax(model(v), -1)[torch.arange(v.shape[0]), es.y].sum())(es.x)
    expected = lpips_similarity(grad, es.score.reshape(es.x.shape), backbone_path=backbone, linear_path=linear)
    assert row["score_lpips"] == pytest.approx(float(expected.double().mean()), rel=1e-4)
    assert ref.fit_report()["lpips_weights"] == [str(backbone), str(linear)]


# ---- the paper's batch-level strengths in our units ---------------------------------------


def test_paper_gradient_norm_penalty_equals_ours_with_the_mapped_weight():
    """The paper's code: 1e5 c ||grad_X mean_j l_j||^2 / B, the norm over the whole batch X."""
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 16), torch.nn.Softplus(),
                                torch.nn.Linear(16, 5)).double()
    for batch in (7, 128):
        x = torch.randn(batch, 3, 2, 2, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 5, (batch,), generator=gen)
        c = 0.0728  # the paper's Figure-1 aligned model
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xr), y), xr)
        paper = paper_units.PAPER_GRADIENT_NORM_SCALE * c * g.pow(2).sum() / batch
        loss, logs = GradientNorm(paper_units.gradient_norm_weight(c, batch))(model, x, y)
        ce = F.cross_entropy(model(x), y)
        torch.testing.assert_close(loss - ce, paper, rtol=1e-12, atol=0)
    assert paper_units.gradient_norm_weight(1.0) == pytest.approx(1e5 / 128 ** 2)


def test_paper_pgd_budget_spread_over_the_batch():
    # A batch perturbation of norm eps_batch shared equally by B images gives each eps_batch / sqrt(B).
    eps_batch, batch = 3.0, 128
    per = paper_units.pgd_eps(eps_batch, batch)
    delta = torch.full((batch, 3072), 1.0, dtype=torch.float64)
    delta *= eps_batch / delta.norm()
    assert per == pytest.approx(float(delta[0].norm()), rel=1e-12)


def test_cifar10_preset_grids_schedule_and_quick():
    full = get_preset("cifar10")
    paper = {"gradient_norm": (1e-5, 1e2), "smoothness": (1e-4, 1e4), "noise_augmentation": (1e-3, 1e2),
             "pgd_l2": (1e-5, 1e4)}
    to_ours = {"gradient_norm": lambda c: 1e5 * c / 128 ** 2, "pgd_l2": lambda e: e / math.sqrt(128)}
    for name, (low, high) in paper.items():
        grid = np.logspace(math.log10(low), math.log10(high), 30)
        expected = [to_ours.get(name, lambda v: v)(v) for v in grid]
        assert np.allclose(full.strengths(name), expected, rtol=5e-3, atol=0), name
        assert full.strengths(name)[0] == pytest.approx(expected[0], rel=1e-12)
        assert full.strengths(name)[-1] == pytest.approx(expected[-1], rel=1e-12)
    t = full.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.epochs, t.augment, t.n_train) == \
        ("sgd", 0.025, 5e-4, 128, 200, "crop_flip", 50000)
    assert t.milestone_epochs() == (150, 175) and t.lr_gamma == 0.1
    assert full.model.name == "ResNet18" and full.model.options == {}
    assert dict(full.sweep[3][2]) == {"steps": 10, "bounds": (0.0, 1.0)}
    assert dict(full.sweep[0][2]) == {"lr_weight": pytest.approx(1e5 * 0.01 / 128 ** 2)}  # c = 0.01
    assert full.n_models == 121
    quick = get_preset("cifar10", quick=True)
    assert quick.n_seeds == 1 and all(len(v) == 2 for _, v, _ in quick.sweep)
    assert quick.train.n_train <= 500 and quick.train.epochs <= 2


# ---- the real --quick acceptance run (slow) ----------------------------------------------


@pytest.mark.slow
def test_quick_preset_end_to_end_through_the_cli(tmp_path):
    """``cifar10 --quick`` on files in the exact format: 500 training, 500 test images."""
    write_cifar_folder(tmp_path / "data", n_per_batch=100, n_test=500)
    t0 = time.perf_counter()
    proc = _cli("cifar10", "--quick", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                "--no-progress")
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and len(results["models"]) == 9
    assert (tmp_path / "run" / "fig_gallery.png").stat().st_size > 0  # 3-channel gallery figure
    for row in results["models"]:
        for key in ("accuracy", "on_robustness", "off_robustness", "score_cosine", "regime", *_IMAGE_FIELDS):
            assert key in row
    print(f"cifar10 --quick: {elapsed:.1f} s wall (load {os.getloadavg()[0]:.2f})")
    assert elapsed < 600


# ---- the GPU-hour estimate (tiny size; no timing assertions) -----------------------------


def test_gpu_hour_estimate_multiplies_out_the_sweep():
    import importlib.util

    path = ROOT / "benchmarks" / "estimate_cifar10_gpu_hours.py"
    spec = importlib.util.spec_from_file_location("estimate_cifar10_gpu_hours", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.estimate(steps=1, warmup=0, width=2, batch=4, seeds=3, image_size=8)
    assert list(result["epoch_s"]) == ["none", "gradient_norm", "smoothness", "noise_augmentation", "pgd_l2"]
    assert result["models_per_seed"] == {"none": 1, "gradient_norm": 30, "smoothness": 30,
                                         "noise_augmentation": 30, "pgd_l2": 30}
    assert result["steps_per_epoch"] == 50000 // 4
    epoch = result["epoch_s"]
    expected = 200 * 3 * (epoch["none"] + 30 * sum(v for k, v in epoch.items() if k != "none"))
    assert result["total_s"] == pytest.approx(expected, rel=1e-12)
    assert epoch["none"] == pytest.approx(result["step_s"]["none"] * 12500, rel=1e-12)
    assert "363 models x 200 epochs" in bench.format_report(result)


# ---- the paper's lr rule for strong gradient penalties ----------------------------------


def test_gradient_norm_lr_rule_reaches_the_trainer(monkeypatch):
    """lr / (weight / lr_weight) above lr_weight (the paper: lr / (c / 0.01) for c > 0.01)."""
    from manifold_lab.experiments import sweep
    from manifold_lab.training import objective_from_config

    assert GradientNorm(0.5, lr_weight=0.1).lr_factor() == pytest.approx(0.2)
    assert GradientNorm(0.05, lr_weight=0.1).lr_factor() == 1.0
    assert GradientNorm(5.0).lr_factor() == 1.0 and "lr_weight" not in GradientNorm(5.0).config()
    assert objective_from_config(GradientNorm(0.5, lr_weight=0.1).config()) == GradientNorm(0.5, lr_weight=0.1)
    with pytest.raises(ValueError, match="lr_weight"):
        GradientNorm(1.0, lr_weight=0.0)
    seen = []
    real_train = sweep.train

    def spy(model, objective, **kwargs):
        seen.append((objective.weight, kwargs["lr"]))
        return real_train(model, objective, **{**kwargs, "epochs": 0})

    monkeypatch.setattr(sweep, "train", spy)
    base = get_preset("toy_sphere", quick=True)
    preset = dataclasses.replace(base, sweep=(("gradient_norm", (0.05, 0.4), {"lr_weight": 0.1}),),
                                 eval=dataclasses.replace(base.eval, n_points=4, n_accuracy=4, n_samples=2))
    for job in sweep.plan_jobs(preset, 0):
        if job.regularizer == "gradient_norm":
            sweep.run_job(preset, job, 0, "cpu")
    lr = preset.train.lr
    assert seen == [(0.05, lr), (0.4, pytest.approx(lr * 0.25, rel=1e-15))]
