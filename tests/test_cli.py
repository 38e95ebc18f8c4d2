"""The command line: --list, argument checks, one-line errors with no traceback."""

import subprocess
import sys

import pytest
import torch

from manifold_lab.experiments.presets import PRESETS
from manifold_lab.run import EXIT_USAGE, main


def _run_main(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_every_preset(capsys):
    code, out, err = _run_main(capsys, ["--list"])
    assert code == 0 and err == ""
    names = [line.split()[0] for line in out.splitlines()]
    assert names == list(PRESETS)
    assert "toy_sphere" in names and "toy_subspace" in names


@pytest.mark.parametrize("argv, fragment", [
    (["nope"], "unknown preset 'nope'"),
    ([], "give a preset NAME"),
    (["toy_sphere", "--seed", "x1"], "--seed must be an integer"),
    (["toy_sphere", "--seed", "-3"], "--seed must be an integer in [0, 4294967295]"),
    (["toy_sphere", "--seed", str(2 ** 64 + 1)], "--seed must be an integer in [0, 4294967295]"),
    (["toy_sphere", "--seed", "1.5"], "--seed must be an integer"),
    (["toy_sphere", "--jobs", "0"], "--jobs must be an integer >= 1"),
    (["toy_sphere", "--device", "gpu"], "not a torch device"),
    (["toy_sphere", "--device", "cuda:99"], "--device cuda:99"),
    (["toy_sphere", "--weak-ratio", "-1"], "--weak-ratio must be a positive"),
    (["toy_sphere", "--excessive-on", "nan"], "--excessive-on must be a number between 0 and 1"),
    (["toy_sphere", "--excessive-on", "1.5"], "--excessive-on must be a number between 0 and 1"),
    (["toy_sphere", "--excessive-on", "1"], "--excessive-on must be a number between 0 and 1"),
    (["toy_sphere", "--bogus"], "unrecognized arguments: --bogus"),
    (["toy_sphere", "--data-dir", "/"], "--data-dir: preset 'toy_sphere' reads no data files"),
    (["fmnist", "--data-dir", "/no/such/folder"], "--data-dir '/no/such/folder' is not a directory"),
])
def test_bad_input_is_one_line_on_stderr(capsys, argv, fragment):
    code, out, err = _run_main(capsys, argv)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1 and fragment in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_refused(capsys):
    code, _, err = _run_main(capsys, ["toy_sphere", "--device", "cuda"])
    assert code == EXIT_USAGE and "CUDA is not available" in err and err.count("\n") == 1


def test_out_pointing_at_a_file_is_refused(capsys, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    code, _, err = _run_main(capsys, ["toy_sphere", "--out", str(target)])
    assert code == EXIT_USAGE and "is an existing file" in err
    assert target.read_text() == "x"


def test_unwritable_out_is_refused(capsys, tmp_path):
    # /proc refuses new entries even for root, unlike a chmod-ed directory.
    code, _, err = _run_main(capsys, ["toy_sphere", "--out", "/proc/manifold_lab_test/run"])
    assert code == EXIT_USAGE and "not a writable directory" in err
    assert err.count("\n") == 1


def test_out_of_another_configuration_is_refused_without_traceback(capsys, tmp_path):
    (tmp_path / "run.json").write_text('{"fingerprint": "other", "preset": "toy_subspace"}')
    code, out, err = _run_main(capsys, ["toy_sphere", "--quick", "--out", str(tmp_path),
                                        "--no-progress", "--jobs", "1"])
    # Refused before the banner, with the usage status, leaving no lock in the folder.
    assert code == EXIT_USAGE and out == "" and err.count("\n") == 1
    assert "another configuration (preset 'toy_subspace' there, 'toy_sphere' here" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_a_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "manifold_lab.run", "toy_sphere", "--seed", "abc"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == EXIT_USAGE
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "--seed" in proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing created before input is valid


def test_a_full_tiny_run_through_main_prints_the_summary_and_resumes(capsys, tmp_path, monkeypatch):
    from experiments_fakes import TINY

    monkeypatch.setitem(PRESETS, "tiny", (TINY, TINY))
    argv = ["tiny", "--out", str(tmp_path), "--jobs", "1", "--no-progress", "--no-figures"]
    code, out, err = _run_main(capsys, argv)
    assert code == 0, err
    assert "bayes_optimal" in out and "regime labels by strength" in out
    assert (tmp_path / "results.json").exists() and (tmp_path / "models.csv").exists()
    code, out, _ = _run_main(capsys, argv + ["--excessive-on", "0.9"])
    assert code == 0 and f"{TINY.n_models + 1} model(s) resumed" in out
    import json

    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["config"]["thresholds"]["excessive_on_fraction"] == 0.9


@pytest.mark.slow
def test_quick_preset_from_the_command_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "manifold_lab.run", "toy_sphere", "--quick", "--out",
         str(tmp_path / "run"), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and len(results["models"]) == PRESETS["toy_sphere"][1].n_models
    assert all((tmp_path / "run" / f"fig_{name}.png").exists() for name in results["claims"])
