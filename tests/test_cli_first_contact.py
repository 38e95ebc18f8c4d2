"""First contact (issue 19): every refusal is one line with exit 2 before anything is
written, a refused configuration names what differs, and the command line answers
--help / --list / argument errors without importing torch."""

import dataclasses
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from experiments_fakes import TINY
from manifold_lab import metrics
from manifold_lab._preset_index import PRESET_INDEX, list_lines
from manifold_lab.datasets import read_idx
from manifold_lab.datasets._files import DatasetError
from manifold_lab.experiments.kinds import FashionMnistSpec
from manifold_lab.experiments.pipeline import check_preset, run_experiment
from manifold_lab.experiments.presets import PRESETS, get_preset
from manifold_lab.run import EXIT_USAGE, PROG, QUICK_NOTE, main
from test_datasets_readers import idx_bytes, write_idx_set


def _run_main(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- start-up, --help, --list


def test_the_preset_index_agrees_with_the_presets():
    """The torch-free index (--help, --list, name checks) says what presets.PRESETS says."""
    assert list(PRESET_INDEX) == list(PRESETS)
    for name, (full, quick) in PRESETS.items():
        entry = PRESET_INDEX[name]
        assert entry.description == full.description, name
        assert (entry.n_models, entry.n_models_quick) == (full.n_models, quick.n_models), name
        assert entry.reference_job == full.data.regime_reference.job, name


def test_the_evaluate_index_agrees_with_the_modules_that_need_torch():
    """The torch-free names `run evaluate` checks its arguments against are the real ones."""
    from manifold_lab import _evaluate_index as index
    from manifold_lab.experiments import checkpoint_data, robust_accuracy
    from manifold_lab.models import ARCHITECTURES
    from manifold_lab.models.normalized import NORMALIZATIONS
    from manifold_lab.training import zoo_entries

    assert index.ARCHITECTURE_CLASSES == {name: n for name, (_, n) in ARCHITECTURES.items()}
    assert index.ATTACK_NAMES == tuple(robust_accuracy.ATTACKS)
    assert NORMALIZATIONS is index.NORMALIZATIONS and zoo_entries.ZOO_ENTRIES is index.ZOO_ENTRIES
    assert checkpoint_data.DATASETS is index.DATASETS and robust_accuracy.AttackSpec is index.AttackSpec


_EVALUATE = ["evaluate", "--dataset", "cifar10", "--data-dir", "d", "--checkpoint", "c.pt"]
_NO_HEAVY_IMPORTS = f"""
import sys
from manifold_lab.run import main
codes = []
for argv in (["toy_spher"], ["--list"], ["toy_sphere", "--seed", "x"], ["toy_sphere", "--excessive-on", "2"],
             ["--help"], ["evaluate", "--help"], ["evaluate"], {_EVALUATE + ["--arch", "resnet19"]},
             {_EVALUATE + ["--arch", "imagenet/Standard_R50"]}, {_EVALUATE + ["--arch", "resnet18", "--steps", "0"]},
             {_EVALUATE + ["--arch", "resnet18", "--eps", "8/255"]}):
    try:
        codes.append(main(argv))
    except SystemExit as exc:  # --help
        codes.append(exc.code)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib", "numpy"))
print(codes, heavy[:3])
"""


def test_argument_errors_help_and_list_do_not_import_torch():
    proc = subprocess.run([sys.executable, "-c", _NO_HEAVY_IMPORTS], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[2, 0, 2, 2, 0, 0, 2, 2, 2, 2, 2] []", proc.stdout + proc.stderr
    assert f"{PROG}: error: unknown preset 'toy_spher'" in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"{PROG} evaluate: error:")]
    assert len(errors) == 5, proc.stderr
    for fragment in ("the following arguments are required: --dataset", "--arch 'resnet19' is not a known",
                     "is a imagenet model but --dataset is cifar10", "--steps must be an integer >= 1",
                     "--eps needs --attack"):
        assert sum(fragment in line for line in errors) == 1, (fragment, proc.stderr)
    assert "usage: python -m manifold_lab.run evaluate" in proc.stdout  # evaluate --help


def test_evaluate_help_on_the_command_line_does_not_import_torch():
    """`python -m manifold_lab.run evaluate --help` as typed: -X importtime lists every module imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "manifold_lab.run", "evaluate", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--checkpoint FILE" in proc.stdout, proc.stdout + proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert "manifold_lab.run_evaluate" in imported  # the log is read right
    heavy = [m for m in imported if m.split(".")[0] in ("torch", "matplotlib", "numpy")]
    assert heavy == [], heavy[:5]


def test_help_lists_the_subcommands_and_every_preset(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert f"{PROG} evaluate" in out and f"{PROG} --list" in out
    for line in list_lines():
        assert " ".join(line.split()) in " ".join(out.split())


# ---------------------------------------------------------------- data checks before any write


@pytest.fixture(scope="module")
def small_idx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("idx_small")
    write_idx_set(folder, n_train=40, n_test=10)
    return folder


def _small_fmnist(data_dir, **counts):
    """The fmnist quick preset shrunk to 40 training and 10 test images."""
    quick = get_preset("fmnist", quick=True)
    data = dataclasses.replace(quick.data, data_dir=str(data_dir), n_fit=counts.pop("n_fit", 20))
    train = dataclasses.replace(quick.train, n_train=counts.pop("n_train", 20))
    ev = dataclasses.replace(quick.eval, n_points=counts.pop("n_points", 4), n_accuracy=counts.pop("n_accuracy", 4))
    return dataclasses.replace(quick, data=data, train=train, eval=ev)


@pytest.mark.parametrize("counts, message", [
    ({"n_accuracy": 6}, "eval.n_accuracy = 6 asks for 6 held-out images for the accuracy (second half of the "
                        "test split) but only 5 are available"),
    ({"n_points": 200}, "eval.n_points = 200 asks for 200 held-out images for the metrics"),
    ({"n_train": 41}, "train.n_train = 41 asks for 41 training images but only 40"),
    ({"n_fit": 50}, "data.n_fit = 50 asks for 50 training images but only 40"),
])
def test_too_few_images_are_refused_before_anything_is_written(tmp_path, small_idx, counts, message):
    preset = _small_fmnist(small_idx, **counts)
    with pytest.raises(ValueError) as info:
        check_preset(preset)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="asks for"):
        run_experiment(preset, tmp_path / "run", jobs=1, progress=False, figures=False)
    assert not (tmp_path / "run").exists()
    check_preset(_small_fmnist(small_idx))  # the counts that fit pass


def test_a_corrupt_data_dir_writes_nothing_and_the_fixed_command_runs_into_the_same_out(
        capsys, tmp_path, small_idx):
    bad = tmp_path / "bad"
    write_idx_set(bad, n_train=40, n_test=10)
    (bad / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    out = tmp_path / "run"
    code, stdout, err = _run_main(capsys, ["fmnist", "--quick", "--data-dir", str(bad), "--out", str(out)])
    assert code == EXIT_USAGE and stdout == "" and err.count("\n") == 1 and "train-images" in err, err
    assert not out.exists()


def test_another_configuration_names_the_settings_that_differ(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", (TINY, TINY))
    from manifold_lab.experiments.presets import preset_to_dict

    config = json.loads(json.dumps(preset_to_dict(TINY)))
    config["data"]["noise_std"] = 0.5
    stored = {"fingerprint": "0123456789abcdef", "preset": TINY.name, "base_seed": 0, "quick": False,
              "config": config}
    (tmp_path / "run.json").write_text(json.dumps(stored))
    (tmp_path / "models").mkdir()
    code, out, err = _run_main(capsys, ["tiny", "--seed", "3", "--out", str(tmp_path), "--no-progress"])
    assert code == EXIT_USAGE and out == "" and err.count("\n") == 1
    expected = f"another configuration (base_seed 0 there, 3 here; data.noise_std 0.5 there, {TINY.data.noise_std!r} here)"
    assert expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "run.json"]  # no run.lock left


def test_a_foreign_run_json_is_refused_before_the_banner_and_leaves_no_lock(capsys, tmp_path):
    (tmp_path / "run.json").write_text('{"name": "some other tool"}')
    code, out, err = _run_main(capsys, ["toy_sphere", "--quick", "--out", str(tmp_path)])
    assert code == EXIT_USAGE and out == "" and err.count("\n") == 1 and "not a run file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_an_unreachable_ray_cluster_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    from manifold_lab.experiments.backends import ray as ray_backend

    class NoCluster:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kwargs):
            raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to")

    monkeypatch.setattr(ray_backend, "import_ray", lambda: NoCluster)
    out = tmp_path / "run"
    code, stdout, err = _run_main(capsys, ["toy_sphere", "--quick", "--backend", "ray", "--ray-address", "auto",
                                           "--out", str(out)])
    assert code == EXIT_USAGE and stdout == "" and err.count("\n") == 1
    assert "cannot start or reach Ray at auto: Could not find any running Ray instance" in err, err
    assert not out.exists()


def test_quick_output_says_it_is_a_smoke_test(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", (TINY, TINY))
    code, out, err = _run_main(capsys, ["tiny", "--quick", "--out", str(tmp_path), "--jobs", "1",
                                        "--no-progress", "--no-figures"])
    assert code == 0, err
    assert out.rstrip().endswith(QUICK_NOTE)
    assert "columns:" in out and "columns:" in (tmp_path / "summary.txt").read_text()


# ---------------------------------------------------------------- readers and metrics


def test_a_label_file_with_the_wrong_dimensions_names_the_header(tmp_path):
    write_idx_set(tmp_path, n_train=12, n_test=5, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    # The file: magic 0x00000806 (ndim 6), whose "sizes" are label bytes.
    path.write_bytes(bytes([0, 0, 8, 6]) + bytes(range(1, 41)))
    from manifold_lab.datasets import load_mnist

    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path, split="train")
    msg = str(info.value)
    assert "IDX header of 6 dimension(s) (magic 00000806) where 1 are expected" in msg and "\n" not in msg
    # Without an expected ndim the sizes are multiplied exactly (no overflow) and the
    # diagnosis is the header's, not "longer than its header says".
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    sizes = [int.from_bytes(bytes(range(1, 41))[i:i + 4], "big") for i in range(0, 24, 4)]
    needed = int(np.prod(np.array(sizes, dtype=object)))
    assert f"needs {needed} data bytes, the file has 16" in str(info.value)
    assert "truncated or not an IDX file" in str(info.value)


def test_gzip_label_file_round_trip_still_reads(tmp_path):
    labels = np.arange(7, dtype=np.uint8)
    (tmp_path / "l.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    assert read_idx(tmp_path / "l.gz", ndim=1).tolist() == labels.tolist()


def _basis(d=6, k=2):
    return torch.linalg.qr(torch.randn(d, k, generator=torch.Generator().manual_seed(0),
                                       dtype=torch.float64)).Q


@pytest.mark.parametrize("fn", [metrics.tangent_fraction, metrics.alignment_ratio])
def test_a_zero_gradient_is_nan_with_a_warning_or_an_error(fn):
    grad = torch.ones(3, 6, dtype=torch.float64)
    grad[1] = 0.0
    with pytest.warns(metrics.ZeroGradientWarning, match="1 of 3 gradient"):
        values = fn(grad, _basis())
    assert torch.isnan(values[1]) and torch.isfinite(values[[0, 2]]).all()
    with pytest.raises(ValueError, match="exactly zero"):
        fn(grad, _basis(), zero="raise")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isnan(fn(grad, _basis(), zero="nan")[1])
        fn(torch.ones(3, 6, dtype=torch.float64), _basis())  # no zero: no warning


def test_a_gradient_of_the_wrong_width_is_blamed_on_the_gradient():
    with pytest.raises(ValueError, match=r"grad has 5 entries per point .* basis has 6 rows"):
        metrics.tangent_fraction(torch.ones(3, 5, dtype=torch.float64), _basis())


def test_manifold_robustness_accepts_empty_x_like_its_siblings():
    x = torch.zeros(0, 6, dtype=torch.float64)
    r = metrics.manifold_robustness(lambda z: z.sum(-1), x, _basis(), [0.1, 1.0], n_samples=4,
                                    generator=torch.Generator().manual_seed(0))
    assert r.on_per_point.shape == (0, 2) and torch.isnan(r.on).all() and torch.isnan(r.off_stderr).all()
    assert metrics.tangent_fraction(x, _basis()).shape == (0,)


def test_workers_take_no_semaphore_for_tqdm():
    """A worker's tqdm bars must not create a multiprocessing lock: in a spawned worker it
    is a named semaphore, which a worker killed on Ctrl-C or SIGTERM cannot unregister, and
    the resource tracker then printed a multi-line "leaked semaphore objects" warning after
    the run's one line. (tqdm's own lock, TqdmDefaultWriteLock, holds one as mp_lock.)"""
    from tqdm import tqdm

    from manifold_lab.experiments.backends import workers

    saved = tqdm.__dict__.get("_lock")
    try:
        if "_lock" in tqdm.__dict__:
            del tqdm._lock  # as in a fresh worker process
        workers._no_process_locks()
        for _ in tqdm(range(2), disable=True):
            pass
        lock = tqdm.get_lock()
        assert not hasattr(lock, "mp_lock") and not hasattr(lock, "locks"), lock
    finally:
        if saved is not None:
            tqdm._lock = saved
        elif "_lock" in tqdm.__dict__:
            del tqdm._lock


def test_seeds_overrides_the_presets_seeds_and_is_part_of_the_configuration(capsys, tmp_path, monkeypatch):
    """--seeds N changes n_seeds (so a directory of the preset's own seeds is another
    configuration, named as such); --seeds 0 is a one-line usage error."""
    monkeypatch.setitem(PRESETS, "tiny", (TINY, TINY))
    from manifold_lab.experiments.presets import preset_to_dict

    code, out, err = _run_main(capsys, ["tiny", "--seeds", "0", "--out", str(tmp_path / "a")])
    assert code == EXIT_USAGE and out == "" and "--seeds must be an integer >= 1" in err and err.count("\n") == 1
    config = json.loads(json.dumps(preset_to_dict(TINY)))
    stored = {"fingerprint": "0123456789abcdef", "preset": TINY.name, "base_seed": 0, "quick": False,
              "config": config}
    (tmp_path / "run.json").write_text(json.dumps(stored))
    (tmp_path / "models").mkdir()
    seeds = TINY.n_seeds + 1
    code, out, err = _run_main(capsys, ["tiny", "--seeds", str(seeds), "--out", str(tmp_path), "--no-progress"])
    assert code == EXIT_USAGE
    assert f"n_seeds {TINY.n_seeds} there, {seeds} here" in err, err
