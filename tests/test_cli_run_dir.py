"""The command line's run-directory and backend options: one-line errors before
any work, one-line warnings for what was recovered, users' files untouched."""

import json
import sys

import pytest

from experiments_fakes import TINY
from manifold_lab.experiments.backends import workers as local_workers
from manifold_lab.experiments.presets import PRESETS
from manifold_lab.run import EXIT_USAGE, PROG, main


def _run_main(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, fragment", [
    (["toy_sphere", "--out", ""], "--out is empty"),
    (["toy_sphere", "--out", "  "], "--out is empty"),
    (["toy_sphere", "--backend", "spark"], "invalid choice: 'spark'"),
    (["toy_sphere", "--ray-address", "auto"], "need --backend ray"),
    (["toy_sphere", "--gpus-per-model", "0.5"], "need --backend ray"),
    (["toy_sphere", "--backend", "ray", "--gpus-per-model", "0"], "--gpus-per-model must be"),
    (["toy_sphere", "--backend", "ray", "--ray-address", ""], "--ray-address is empty"),
    (["toy_sphere", "--backend", "ray", "--device", "cuda:1"], "use --device cuda"),
])
def test_bad_backend_and_out_options_are_one_line(capsys, tmp_path, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run_main(capsys, argv)
    assert code == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and fragment in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even runs/


def test_backend_ray_without_ray_says_what_to_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = _run_main(capsys, ["toy_sphere", "--backend", "ray", "--out",
                                        str(tmp_path / "run")])
    assert code == EXIT_USAGE and out == "" and err.count("\n") == 1
    assert "--backend ray needs the Ray package" in err and 'pip install' in err
    assert '".[ray]"' in err
    assert not (tmp_path / "run").exists()


def test_out_in_a_non_empty_directory_that_is_not_a_run_is_refused(capsys, tmp_path,
                                                                  monkeypatch):
    (tmp_path / "results.json").write_text("my own results")
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    for out_arg in (".", str(tmp_path)):
        code, _, err = _run_main(capsys, ["toy_sphere", "--out", out_arg])
        assert code == EXIT_USAGE and err.count("\n") == 1 and "not a run directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "results.json"]
    assert (tmp_path / "results.json").read_text() == "my own results"


def test_recoveries_are_one_line_warnings(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny", (TINY, TINY))
    argv = ["tiny", "--out", str(tmp_path), "--jobs", "1", "--no-progress", "--no-figures"]
    assert _run_main(capsys, argv)[0] == 0
    path = tmp_path / "models" / "none-s0.json"
    stored = json.loads(path.read_text())
    stored["row"]["accuracy"] = None
    path.write_text(json.dumps(stored))
    monkeypatch.setattr(local_workers, "available_memory",
                        lambda: local_workers.WORKER_MEMORY_BYTES)
    code, out, err = _run_main(capsys, argv[:-4] + ["--jobs", "1000", "--no-progress",
                                                    "--no-figures"])
    assert code == 0, err
    lines = err.strip().splitlines()
    assert lines == [
        f"{PROG}: warning: {path} is malformed (accuracy is null); recomputing that model",
        f"{PROG}: warning: --jobs 1000 capped to 1 (1 model(s) to run, "
        f"{local_workers.usable_cpus()} usable CPU(s), memory for 1 worker(s) of 512 MiB)",
    ]
    assert f"{TINY.n_models} model(s) resumed" in out
