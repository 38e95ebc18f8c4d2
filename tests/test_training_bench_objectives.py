"""The objectives benchmark runs at tiny size and reports sane rows (no timing assertions)."""

import importlib.util
import math
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_objectives.py"
_spec = importlib.util.spec_from_file_location("bench_objectives", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_bench_objectives_tiny():
    rows = bench.bench_objectives(n=16, batch_size=8, repeats=1, pgd_steps=(2,))
    labels = [r["objective"] for r in rows]
    assert labels == ["cross_entropy", "gradient_norm", "smoothness", "noise_augmentation", "pgd_l2 (k=2)"]
    assert rows[0]["ratio"] == 1.0
    assert all(math.isfinite(r["seconds"]) and r["seconds"] > 0 for r in rows)
    assert rows[-1]["bound"] == bench.PGD_COST_FACTOR * 3
    table = bench.format_table(rows)
    assert "pgd_l2 (k=2)" in table and "x CE" in table


def test_make_data_shapes():
    x, y = bench.make_data(5)
    assert x.shape == (5, 1, 28, 28) and y.shape == (5,)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
