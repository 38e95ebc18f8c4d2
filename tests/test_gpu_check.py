"""``benchmarks/gpu_check.sh`` on a CPU machine: the dry run, and a clear stop without CUDA."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(*args):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_dry_run_lists_the_four_steps_without_a_gpu():
    r = _run("--dry-run")
    assert r.returncode == 0, r.stderr
    assert "pytest -m gpu" in r.stdout and "evaluate" in r.stdout and "33.2" in r.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_stops_with_one_line_and_status_2():
    r = _run()
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "CUDA" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args, fragment", [(["--device", "cpu"], "cuda or cuda:N"), (["--bogus"], "unknown option"),
                                            (["--data-dir", "/nonexistent"], "not a folder")])
def test_bad_options_are_one_line(args, fragment):
    r = _run(*args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr
