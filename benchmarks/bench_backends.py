"""Ray against local worker processes on one machine: wall time and identical numbers.

    python benchmarks/bench_backends.py                  # toy_sphere --quick, 2 pairs, ~3 min
    python benchmarks/bench_backends.py --pairs 1 --preset toy_subspace

Runs ``python -m manifold_lab.run PRESET --quick`` with ``--backend local`` and
``--backend ray`` back to back (the order alternates between pairs, so a change of
load hits both sides), each into a fresh directory, and reports the wall time of each
command (start-up included), the ratio ray/local, and whether every file agrees
field by field once the wall-clock fields are left out. Timings on a shared machine
are noisy: the 1-minute load average is printed beside each run. Exits non-zero if
any number differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Wall-clock fields: the only ones that may differ between two runs.
TIMINGS = frozenset({"train_s", "eval_s", "train_cpu_s", "eval_cpu_s", "runtime_s", "runtime_total_s", "compute_s",
                     "compute_cpu_s"})

#: Text reports compared verbatim (models.csv without its timing columns).
_TEXT_FILES = ("robustness_curves.csv", "summary.txt", "theorem_3_1.md")


def _flat(obj, prefix=""):
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key not in TIMINGS:
                yield from _flat(value, f"{prefix}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _flat(value, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def _json_fields(path: Path) -> dict:
    return dict(_flat(json.loads(path.read_text())))


def _csv_rows(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMINGS}
            for row in csv.DictReader(path.read_text().splitlines())]


def differences(a: Path, b: Path) -> tuple[int, list[str]]:
    """Fields compared and what differs between run directories ``a`` and ``b``
    (``results.json``, ``models/*.json``, the CSVs and text reports, file names)."""
    compared, differ = 0, []
    names = {p.name for p in a.iterdir()} ^ {p.name for p in b.iterdir()}
    differ += [f"only in one directory: {n}" for n in sorted(names)]
    pairs = [(a / "results.json", b / "results.json")]
    pairs += [(p, b / "models" / p.name) for p in sorted((a / "models").glob("*.json"))]
    for pa, pb in pairs:
        if not pb.exists():
            differ.append(f"missing: {pb}")
            continue
        fa, fb = _json_fields(pa), _json_fields(pb)
        compared += len(fa)
        differ += [f"{pa.name}{k}" for k in sorted(fa.keys() | fb.keys())
                   if fa.get(k, "<missing>") != fb.get(k, "<missing>")]
    if _csv_rows(a / "models.csv") != _csv_rows(b / "models.csv"):
        differ.append("models.csv")
    differ += [name for name in _TEXT_FILES if (a / name).read_text() != (b / name).read_text()]
    return compared, differ


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _run(backend: str, preset: str, out: Path) -> float:
    load = _load()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "manifold_lab.run", preset, "--quick", "--out", str(out),
         "--no-progress", "--no-figures", "--backend", backend],
        capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{backend} run failed: {proc.stderr.strip().splitlines()[-1]}")
    print(f"  {backend:5s} {wall:7.1f} s   (load average {load} at the start)", flush=True)
    return wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="toy_sphere")
    p.add_argument("--pairs", type=int, default=2, help="local/ray pairs (order alternates)")
    args = p.parse_args(argv)
    ratios, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            order = ("local", "ray") if i % 2 == 0 else ("ray", "local")
            print(f"pair {i + 1}: {' then '.join(order)}")
            walls = {b: _run(b, args.preset, Path(tmp) / f"{b}{i}") for b in order}
            compared, differ = differences(Path(tmp) / f"local{i}", Path(tmp) / f"ray{i}")
            ok &= not differ
            ratios.append(walls["ray"] / walls["local"])
            print(f"  ray/local {ratios[-1]:.2f}; {compared} fields compared, "
                  f"{len(differ)} differ {differ[:5]}")
    print(f"ray/local wall-time ratio: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"numbers {'identical' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
