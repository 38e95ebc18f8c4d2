"""metrics takes tensors and callables only (DESIGN.md): its modules import nothing else."""

import ast
from pathlib import Path

METRICS = Path(__file__).resolve().parents[1] / "manifold_lab" / "metrics"
ALLOWED_ROOTS = {"torch", "numpy", "scipy", "__future__", "math", "dataclasses", "typing", "contextlib", "functools",
                 # perceptual.py / lpips.py: the kept SSIM library and weight-file lookup
                 "pytorch_msssim", "os", "pathlib", "importlib",
                 # _chunking.py: the clock behind the throughput-tuned call size
                 "time",
                 # alignment.py: the one-line ZeroGradientWarning
                 "warnings"}
ALLOWED_PROJECT = ("manifold_lab._validation", "manifold_lab._modes", "manifold_lab.metrics")


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ""


def test_metrics_imports_only_torch_numpy_scipy_and_validation():
    files = sorted(METRICS.glob("*.py"))
    assert files
    for path in files:
        for mod in imported_modules(path):
            ok = mod.split(".")[0] in ALLOWED_ROOTS or mod.startswith(ALLOWED_PROJECT)
            assert ok, f"{path.name} imports {mod}"
