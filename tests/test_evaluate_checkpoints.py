"""``run evaluate``: RobustBench/MadryLab-layout checkpoints of every architecture, end to end.

Tiny test-written data (cifar-10-batches-py pickles; an ImageFolder of PNGs), random
weights, a few points and draws. The in-project fits are made once per module and
copied into each test's run directory (a rerun into an evaluation directory reuses
matching fits). Expected numbers are computed here from the files, independently of
the command: accuracy from the network itself on every test image, the score
cosine against a diffusers UNet whose noise prediction is a known constant.
"""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from test_learned_resolution import pil_resize

from manifold_lab.models import build_architecture
from manifold_lab.run import EXIT_USAGE, main

N_TEST, N_TRAIN_BATCH = 12, 8
#: Options that keep a run to seconds: 2 gradient points, all test images for accuracy.
FAST = ["--n-points", "2", "--n-samples", "1", "--n-directions", "1", "--fit-images", "16", "--fit-epochs", "1",
        "--no-progress"]
#: Metric fields every row must carry (the presets' model-row names).
FIELDS = ("accuracy", "nll", "on_robustness", "off_robustness", "on_stderr", "off_stderr", "off_on_ratio",
          "alignment_ratio", "alignment_ratio_median", "tangent_fraction", "score_cosine", "score_ssim",
          "paper_on", "paper_off")
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]


def _batch(rng, n):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    return pickle.dumps({b"batch_label": b"test", b"labels": labels, b"data": data}, protocol=2)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(_batch(rng, N_TRAIN_BATCH))
    (folder / "test_batch").write_bytes(_batch(rng, N_TEST))
    return root


def _cifar_test_set(root):
    raw = pickle.loads((root / "cifar-10-batches-py" / "test_batch").read_bytes())
    x = torch.from_numpy(raw[b"data"].reshape(-1, 3, 32, 32)).float() / 255
    return x, torch.tensor(raw[b"labels"])


def _save(path, net, layout):
    state = net.state_dict()
    module = {f"module.{k}": v for k, v in state.items()}
    if layout == "plain":
        obj = state
    elif layout == "state_dict":  # RobustBench
        obj = {"state_dict": module}
    elif layout == "madrylab":  # robustness: normaliser buffers, attacker copy, model. prefix
        obj = {"epoch": 3, "model": {
            "module.normalizer.new_mean": torch.tensor(MEAN).view(3, 1, 1),
            "module.normalizer.new_std": torch.tensor(STD).view(3, 1, 1),
            **{f"module.model.{k}": v for k, v in state.items()},
            **{f"module.attacker.model.{k}": v for k, v in state.items()}}}
    else:
        raise AssertionError(layout)
    torch.save(obj, path)
    return path


def _expected_accuracy(net, x, y, normalised):
    with torch.no_grad():
        inp = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1) if normalised else x
        return float((net.eval()(inp).argmax(-1) == y).double().mean())


def _run(capsys, argv):
    code = main(["evaluate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cifar_fits(cifar, tmp_path_factory):
    """A finished evaluation directory (its reference/ fits are reused by the other tests), of
    a plain checkpoint behind a named ``--normalization`` (checked by the test after the next)."""
    out = tmp_path_factory.mktemp("fits") / "out"
    path = _save(out.parent / "r18.pt", build_architecture("resnet18", seed=0), "plain")
    assert main(["evaluate", "--dataset", "cifar10", "--data-dir", str(cifar), "--checkpoint", str(path),
                 "--arch", "resnet18", "--out", str(out), "--normalization", "cifar10",
                 "--n-accuracy", str(N_TEST), *FAST]) == 0
    return out


def _out_with_fits(tmp_path, fits):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(fits / "evaluate.json", out)
    shutil.copytree(fits / "reference", out / "reference")
    return out


def _rows(out):
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["schema"] == "manifold_lab.evaluate"
    return results["models"]


def _check_row(row):
    for f in FIELDS:
        assert isinstance(row[f], float) and np.isfinite(row[f]), (f, row[f])
    assert 0 <= row["accuracy"] <= 1 and 0 <= row["tangent_fraction"] <= 1 and -1 <= row["score_cosine"] <= 1
    assert row["on_robustness"] >= 0 and row["off_robustness"] >= 0 and row["on_relative"] is None


# The zoo architectures end to end are -m slow (ResNet-sized networks: ~10 s each); their
# layouts and normalisers are checked against the upstream code by test_zoo_upstream.py and
# test_training_user_checkpoint.py, and a named --normalization end to end by the next test.
@pytest.mark.parametrize("arch", ["resnet18", pytest.param("preact_resnet18", marks=pytest.mark.slow),
                                  pytest.param("wideresnet28_10", marks=pytest.mark.slow)])
def test_cifar_checkpoints_of_each_layout_give_every_field(capsys, tmp_path, cifar, cifar_fits, arch):
    net = build_architecture(arch, seed=1)
    paths = [_save(tmp_path / f"{layout}.pt", net, layout) for layout in ("plain", "state_dict", "madrylab")]
    out = _out_with_fits(tmp_path, cifar_fits)
    # A zoo architecture's file without normaliser buffers needs --normalization; the in-project one does not.
    in_project = arch == "resnet18"
    norm = [] if in_project else ["--normalization", "cifar10"]
    code, stdout, err = _run(capsys, ["--dataset", "cifar10", "--data-dir", str(cifar), "--arch", arch,
                                      "--checkpoint", *map(str, paths), "--out", str(out),
                                      "--n-accuracy", str(N_TEST), *norm, *FAST])
    assert code == 0, err
    rows = _rows(out)
    assert [r["checkpoint"] for r in rows] == [str(p) for p in paths] and {r["arch"] for r in rows} == {arch}
    for row in rows:
        _check_row(row)
    x, y = _cifar_test_set(cifar)
    assert rows[0]["accuracy"] == pytest.approx(_expected_accuracy(net, x, y, not in_project), abs=1e-12)
    assert rows[2]["accuracy"] == pytest.approx(_expected_accuracy(net, x, y, True), abs=1e-12)
    assert rows[2]["normalization_source"] == ("checkpoint:normalizer" if in_project else "argument:cifar10")
    assert rows[2]["normalization"]["std"] == pytest.approx(STD) and rows[2]["clamp"]  # MadryLab's clamp
    assert (out / "fig_gallery.png").stat().st_size > 0 and len(rows[0]["gallery"]["gradient"]) == 2
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["normalization"] == ("auto" if in_project else "cifar10")
    # The same weights behind a module. prefix give the same numbers.
    assert all(rows[1][f] == rows[0][f] for f in FIELDS)
    csv = (out / "models.csv").read_text().splitlines()
    assert len(csv) == 4 and "score_cosine" in csv[0].split(",")
    assert "score_cosine" not in stdout.splitlines()[0] and "cos" in stdout  # the summary table


def test_a_named_normalization_argument_reaches_the_rows(cifar, cifar_fits):
    """The fixture's run: --normalization cifar10 in front of a plain checkpoint."""
    rows = _rows(cifar_fits)
    _check_row(rows[0])
    x, y = _cifar_test_set(cifar)
    net = build_architecture("resnet18", seed=0)
    assert rows[0]["accuracy"] == pytest.approx(_expected_accuracy(net, x, y, True), abs=1e-12)
    assert rows[0]["normalization_source"] == "argument:cifar10" and not rows[0]["clamp"]
    assert rows[0]["normalization"]["std"] == pytest.approx(STD)
    assert json.loads((cifar_fits / "results.json").read_text())["config"]["normalization"] == "cifar10"


def test_code_carrying_checkpoint_is_refused_unless_allowed(capsys, tmp_path, cifar, cifar_fits):
    net = build_architecture("resnet18", seed=2)
    whole = tmp_path / "whole.pt"
    torch.save(net, whole)  # a pickled nn.Module: loading it imports and runs code
    args = ["--dataset", "cifar10", "--data-dir", str(cifar), "--arch", "resnet18", "--checkpoint", str(whole),
            "--n-accuracy", str(N_TEST), *FAST]
    code, _, err = _run(capsys, [*args, "--out", str(tmp_path / "refused")])
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1 and "needs code" in err
    assert not (tmp_path / "refused").exists()
    out = _out_with_fits(tmp_path, cifar_fits)
    code, _, err = _run(capsys, [*args, "--out", str(out), "--allow-code"])
    assert code == 0, err
    x, y = _cifar_test_set(cifar)
    assert _rows(out)[0]["accuracy"] == pytest.approx(_expected_accuracy(net, x, y, False), abs=1e-12)


def _bad_cases(tmp_path, cifar):
    r18 = _save(tmp_path / "r18.pt", build_architecture("resnet18", seed=0), "state_dict")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    garbage = tmp_path / "garbage"
    shutil.copytree(cifar, garbage)
    (garbage / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x80\x02not a pickle")
    no_train = tmp_path / "no_train"
    (no_train / "cifar-10-batches-py").mkdir(parents=True)
    shutil.copy(cifar / "cifar-10-batches-py" / "test_batch", no_train / "cifar-10-batches-py")
    text = tmp_path / "notes.pt"
    text.write_text("hello world\nthis is not a checkpoint\n")
    preact = _save(tmp_path / "preact.pt", build_architecture("preact_resnet18", seed=0), "state_dict")
    base = {"--dataset": "cifar10", "--data-dir": str(cifar), "--arch": "resnet18", "--checkpoint": str(r18)}
    return {
        "missing data dir": ({"--data-dir": str(tmp_path / "nope")}, "is not a directory"),
        "unknown arch": ({"--arch": "vgg11"}, "not a known architecture"),
        "wrong n_classes": ({"--n-classes": "5"}, "does not fit --arch resnet18"),
        "mismatched keys": ({"--arch": "preact_resnet18"}, "does not fit --arch preact_resnet18"),
        "missing checkpoint": ({"--checkpoint": str(tmp_path / "none.pt")}, "not found"),
        "corrupt batch": ({"--data-dir": str(garbage)}, "test_batch"),
        "no training batches": ({"--data-dir": str(no_train)}, "fitted on the training batches"),
        "foreign out dir": ({"--out": str(other)}, "not an evaluation's"),
        "bad normalisation": ({"--normalization": "0.5,0.5"}, "six numbers"),
        "text file as checkpoint": ({"--checkpoint": str(text)}, "unreadable or truncated"),
        "no normaliser for a zoo architecture": ({"--checkpoint": str(preact), "--arch": "preact_resnet18"},
                                                 "none|cifar10|imagenet|half|M1,M2,M3,S1,S2,S3"),
        "eps without attack": ({"--eps": "0.5"}, "--eps needs --attack"),
        "bad eps": ({"--attack": "pgd_linf", "--eps": "8/0"}, "--eps must be"),
        "zoo entry of another dataset": ({"--arch": "imagenet/Salman2020Do_R18"}, "is a imagenet model"),
        "missing lpips weights": ({"--lpips-dir": str(tmp_path)}, "alexnet-owt-7be5be79.pth"),
    }, base


BAD_CASES = ["missing data dir", "unknown arch", "wrong n_classes", "mismatched keys", "missing checkpoint",
             "corrupt batch", "no training batches", "foreign out dir", "bad normalisation", "text file as checkpoint",
             "no normaliser for a zoo architecture", "eps without attack", "bad eps", "zoo entry of another dataset",
             "missing lpips weights"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, cifar, case):
    cases, base = _bad_cases(tmp_path, cifar)
    change, fragment = cases[case]
    opts = {**base, "--out": str(tmp_path / "out"), **change}
    code, _, err = _run(capsys, [a for k, v in opts.items() for a in (k, v)] + FAST)
    assert code == EXIT_USAGE, err
    assert len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- ImageNet

#: Class folders in torchvision's sorted order; the empty one still takes an index.
CLASSES = {"a_cat": 4, "b_dog": 4, "c_empty": 0, "d_fox": 4}
N_IMAGES = sum(CLASSES.values())


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """PNGs of assorted sizes (resized and centre-cropped by the command)."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(1)
    for name, count in CLASSES.items():
        (root / name).mkdir()
        for i in range(count):
            h, w = (int(v) for v in rng.integers(36, 64, size=2))
            Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


IMAGENET_FAST = ["--image-size", "32", "--score-size", "16", "--n-classes", str(len(CLASSES))]


def _biased(arch, cls):
    """Predicts class ``cls`` for every image: zero classifier weights, one positive bias."""
    net = build_architecture(arch, len(CLASSES), seed=3)
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.zero_()
        net.fc.bias[cls] = 1.0
    return net


@pytest.mark.parametrize("arch", ["resnet18_imagenet", pytest.param("resnet50", marks=pytest.mark.slow)])
def test_imagenet_checkpoints_give_every_field_with_torchvision_labels(capsys, tmp_path, imagenet, arch):
    net = build_architecture(arch, len(CLASSES), seed=1)
    paths = [_save(tmp_path / f"{layout}.pt", net, layout) for layout in ("plain", "state_dict")]
    # All images predicted as class 3 (d_fox, after the empty c_empty): accuracy 4/12 only if
    # the empty folder keeps its label index, as torchvision's ImageFolder does.
    paths.append(_save(tmp_path / "fox.pt", _biased(arch, 3), "plain"))
    out = tmp_path / "out"
    code, _, err = _run(capsys, ["--dataset", "imagenet", "--data-dir", str(imagenet), "--arch", arch,
                                 "--checkpoint", *map(str, paths), "--out", str(out), "--n-accuracy", str(N_IMAGES),
                                 "--normalization", "none", *FAST, "--fit-images", "6", *IMAGENET_FAST])
    assert code == 0, err
    rows = _rows(out)
    for row in rows[:2]:
        _check_row(row)
    assert all(rows[1][f] == rows[0][f] for f in FIELDS)
    assert rows[2]["accuracy"] == pytest.approx(CLASSES["d_fox"] / N_IMAGES)
    fits = json.loads((out / "results.json").read_text())["reference_fits"]
    assert fits["score_resolution"] == [16, 16] and fits["image_size"] == 32 and fits["resize"] == 37


def test_imagenet_class_folders_must_match_the_outputs(capsys, tmp_path, imagenet):
    path = _save(tmp_path / "r.pt", build_architecture("resnet18_imagenet", 3, seed=0), "plain")
    code, _, err = _run(capsys, ["--dataset", "imagenet", "--data-dir", str(imagenet), "--arch", "resnet18_imagenet",
                                 "--checkpoint", str(path), "--n-classes", "3", "--out", str(tmp_path / "o"),
                                 "--normalization", "none", *FAST])
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1 and "4 class folders" in err
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- exact score cosine

def _constant_score_model(root, side, c=0.5):
    """A diffusers pipeline directory whose UNet predicts noise ``c`` everywhere: the score
    is ``-c / sigma`` at every pixel, so ``cos(v, score) = -sum(v) / (||v|| sqrt(D))``."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)  # diffusers initialises from the global RNG; tests only
    unet = diffusers.UNet2DModel(
        sample_size=side, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4)
    with torch.no_grad():
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.fill_(c)
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")).save_pretrained(root)
    return root


def _gradient(net, x, y):
    x = x.clone().requires_grad_(True)
    torch.log_softmax(net.eval()(x), -1)[torch.arange(x.shape[0]), y].sum().backward()
    return x.grad.double()


def _cosine_with_minus_ones(v):
    flat = v.reshape(v.shape[0], -1)
    return float((-flat.sum(1) / (flat.norm(dim=1) * flat.shape[1] ** 0.5)).mean())


def test_cifar_score_cosine_is_exact_with_a_known_diffusers_score(capsys, tmp_path, cifar, cifar_fits):
    score_dir = _constant_score_model(tmp_path / "ddpm", 32)
    net = build_architecture("resnet18", seed=4)
    path = _save(tmp_path / "r.pt", net, "state_dict")
    out = _out_with_fits(tmp_path, cifar_fits)
    code, _, err = _run(capsys, ["--dataset", "cifar10", "--data-dir", str(cifar), "--arch", "resnet18",
                                 "--checkpoint", str(path), "--out", str(out), "--score-model", str(score_dir),
                                 *FAST, "--n-points", "3"])
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    idx = results["reference_fits"]["evaluated_images"]
    x, y = _cifar_test_set(cifar)
    expected = _cosine_with_minus_ones(_gradient(net, x[idx], y[idx]))
    assert results["models"][0]["score_cosine"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    fp = results["reference_fits"]["fingerprint"]
    assert (out / "reference" / f"autoencoder-{fp}.pt").exists()
    assert not (out / "reference" / f"denoiser-{fp}.pt").exists()  # the user's score replaces the denoiser


def test_imagenet_score_cosine_compares_the_pillow_downsampled_gradient(capsys, tmp_path):
    """224/64 in miniature: 32 px images, a 16 px score model; expected cos(A g, s) with A
    Pillow's antialiased bilinear resize (independent of the command's torch operator)."""
    rng = np.random.default_rng(2)
    folder = tmp_path / "folder"
    for name, count in CLASSES.items():
        (folder / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)).save(folder / name / f"{i}.png")
    score_dir = _constant_score_model(tmp_path / "ddpm", 16)
    net = build_architecture("resnet18_imagenet", len(CLASSES), seed=5)
    path = _save(tmp_path / "r.pt", net, "plain")
    out = tmp_path / "out"
    code, _, err = _run(capsys, ["--dataset", "imagenet", "--data-dir", str(folder), "--arch", "resnet18_imagenet",
                                 "--checkpoint", str(path), "--out", str(out), "--score-model", str(score_dir),
                                 *FAST, "--n-points", "3", "--fit-images", "4", "--n-classes", str(len(CLASSES)),
                                 "--normalization", "none",
                                 "--image-size", "32", "--resize", "32"])
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    names = results["reference_fits"]["evaluated_images"]
    labels = torch.tensor([sorted(CLASSES).index(n.split("/")[0]) for n in names])
    x = torch.stack([torch.from_numpy(np.array(Image.open(folder / n).convert("RGB"))).permute(2, 0, 1)
                     for n in names]).float() / 255
    g = _gradient(net, x, labels).numpy()
    down = np.stack([[pil_resize(g[i, c], (16, 16)) for c in range(3)] for i in range(len(names))])
    expected = _cosine_with_minus_ones(torch.from_numpy(down))
    assert results["models"][0]["score_cosine"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert results["reference_fits"]["score_resolution"] == [16, 16]



def test_robust_accuracy_and_lpips_are_reported(capsys, tmp_path, cifar, cifar_fits):
    """--attack: robust accuracy on the accuracy images equals pgd_linf run here (no random start);
    --lpips-dir: score_lpips in the rows."""
    from test_metrics_perceptual import write_weights

    from manifold_lab.training import pgd_linf

    write_weights(tmp_path)
    net = build_architecture("resnet18", seed=6).eval()
    path = _save(tmp_path / "r.pt", net, "plain")
    out = _out_with_fits(tmp_path, cifar_fits)
    code, stdout, err = _run(capsys, ["--dataset", "cifar10", "--data-dir", str(cifar), "--arch", "resnet18",
                                      "--checkpoint", str(path), "--out", str(out), "--n-accuracy", str(N_TEST),
                                      "--attack", "pgd_linf", "--eps", "8/255", "--steps", "2",
                                      "--lpips-dir", str(tmp_path), *FAST])
    assert code == 0, err
    row = _rows(out)[0]
    x, y = _cifar_test_set(cifar)
    adv = pgd_linf(net, x, y, 8 / 255, steps=2, bounds=(0.0, 1.0), random_start=False)
    with torch.no_grad():
        expected = float((net(adv).argmax(-1) == y).double().mean())
    assert row["attack"] == "pgd_linf" and row["attack_eps"] == pytest.approx(8 / 255) and row["attack_steps"] == 2
    assert row["robust_accuracy"] == pytest.approx(expected, abs=1e-12) and row["robust_accuracy"] <= row["accuracy"]
    assert np.isfinite(row["score_lpips"]) and row["score_lpips"] <= 1  # 1 − LPIPS (random weights: may be < 0)
    header = (out / "models.csv").read_text().splitlines()[0].split(",")
    assert "robust_accuracy" in header and "score_lpips" in header and "pgd_linf eps=0.03137 acc" in stdout


def test_default_attack_budgets_are_robustbench_threat_models():
    from manifold_lab.run_evaluate import parse_evaluate_args

    base = ["--data-dir", "d", "--checkpoint", "c.pt"]
    for dataset, arch, attack, eps in (("cifar10", "resnet18", "pgd_linf", 8 / 255), ("cifar10", "resnet18", "pgd_l2", 0.5),
                                       ("imagenet", "resnet50", "pgd_linf", 4 / 255), ("imagenet", "resnet50", "pgd_l2", 3.0)):
        a = parse_evaluate_args([*base, "--dataset", dataset, "--arch", arch, "--attack", attack])
        assert (a.attack.name, a.attack.eps, a.attack.steps) == (attack, pytest.approx(eps), 10)


def test_a_rerun_removes_the_earlier_reports_before_any_work(tmp_path):
    from manifold_lab.experiments.checkpoint_eval import check_eval_dir, write_marker

    out = tmp_path / "out"
    write_marker(out, {"run": 1})
    for name in ("results.json", "models.csv", "summary.txt", "robustness_curves.csv"):
        (out / name).write_text("{}")
    (out / "reference").mkdir()
    (out / "reference" / "fits-x.json").write_text("{}")
    write_marker(check_eval_dir(out), {"run": 2})
    assert sorted(p.name for p in out.iterdir()) == ["evaluate.json", "reference"]
    assert json.loads((out / "evaluate.json").read_text())["config"] == {"run": 2}
    assert (out / "reference" / "fits-x.json").exists()
