#!/usr/bin/env bash
# benchmarks/gpu_check.sh — the GPU readiness check: on a CUDA machine, in under 10 minutes,
#   1. runs the CUDA-only tests (pytest -m gpu),
#   2. times one training epoch of the cifar10 preset's model (in-project ResNet-18, batch 128,
#      50,000 CIFAR-10-sized images; random pixels: the time does not depend on them),
#   3. times one `run evaluate` of a ResNet-18 checkpoint (default fits and points, PGD-Linf
#      robust accuracy), and
#   4. prints the numbers the README's GPU-hour estimate needs (GPU-hours ≈ 33.2 × epoch seconds).
#
# Usage:  bash benchmarks/gpu_check.sh [--device cuda:N] [--data-dir CIFAR_DIR] [--keep DIR]
#         bash benchmarks/gpu_check.sh --dry-run      # print the steps; needs no GPU
# Without a CUDA device it stops at once with one line and exit status 2.
# --data-dir: a real CIFAR-10 folder (holding cifar-10-batches-py) instead of random images.
# --keep DIR: keep the work folder (synthetic data, checkpoint, evaluate output) in DIR.
set -euo pipefail

DEVICE="cuda"
DATA_DIR=""
KEEP=""
DRY=0
PY="${PYTHON:-python}"
# Wall-clock limits of the steps (seconds); together under 10 minutes.
T_TESTS=120
T_EPOCH=150
T_EVAL=300
# Sweep cost in plain-epoch units per epoch-second (README: GPU-hours ≈ 33.2 × epoch seconds).
HOURS_PER_EPOCH_S=33.2

die() { echo "gpu_check: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --device) [ $# -ge 2 ] || die "--device needs a value (cuda or cuda:N)"; DEVICE="$2"; shift ;;
    --data-dir) [ $# -ge 2 ] || die "--data-dir needs a folder"; DATA_DIR="$2"; shift ;;
    --keep) [ $# -ge 2 ] || die "--keep needs a folder"; KEEP="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option $1 (use --dry-run, --device, --data-dir, --keep)" ;;
  esac
  shift
done
case "$DEVICE" in cuda|cuda:[0-9]*) ;; *) die "--device must be cuda or cuda:N, got $DEVICE" ;; esac
[ -z "$DATA_DIR" ] || [ -d "$DATA_DIR" ] || die "--data-dir $DATA_DIR is not a folder"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

steps() {
  echo "1. CUDA-only tests:   timeout $T_TESTS $PY -m pytest -m gpu -q"
  echo "2. one cifar10 epoch: timeout $T_EPOCH $PY (ResNet-18, batch 128, 50,000 images, --device $DEVICE)"
  echo "3. one evaluate:      timeout $T_EVAL $PY -m manifold_lab.run evaluate --dataset cifar10 --arch resnet18 --attack pgd_linf --device $DEVICE"
  echo "4. report:            epoch seconds, GPU-hours of the full sweep ≈ $HOURS_PER_EPOCH_S × epoch seconds, evaluate seconds"
}

if [ "$DRY" = 1 ]; then
  echo "gpu_check (dry run): would run, in $ROOT:"
  steps
  "$PY" -c "import manifold_lab" 2>/dev/null || die "manifold_lab is not importable with $PY (pip install -e .)"
  exit 0
fi

"$PY" - "$DEVICE" <<'PYEOF' || die "no usable CUDA device ($DEVICE): torch.cuda.is_available() is False or the index does not exist; run this on a CUDA machine (or --dry-run)"
import sys, torch
dev = torch.device(sys.argv[1])
sys.exit(0 if torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count() else 1)
PYEOF

WORK="${KEEP:-$(mktemp -d)}"
mkdir -p "$WORK"
[ -n "$KEEP" ] || trap 'rm -rf "$WORK"' EXIT
echo "gpu_check on $("$PY" -c "import torch; print(torch.cuda.get_device_name(torch.device('$DEVICE')))"), work folder $WORK"
steps

t0=$(date +%s)
echo "== 1. CUDA-only tests"
timeout "$T_TESTS" "$PY" -m pytest -m gpu -q -p no:cacheprovider || die "CUDA-only tests failed (above)"

if [ -z "$DATA_DIR" ]; then
  DATA_DIR="$WORK/cifar"
  "$PY" - "$DATA_DIR" <<'PYEOF'
import pickle, sys
from pathlib import Path
import numpy as np
folder = Path(sys.argv[1]) / "cifar-10-batches-py"
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for name, n in [*((f"data_batch_{i}", 10000) for i in range(1, 6)), ("test_batch", 10000)]:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    (folder / name).write_bytes(pickle.dumps({b"labels": labels, b"data": data}, protocol=2))
PYEOF
fi

echo "== 2. one cifar10 training epoch (ResNet-18, batch 128)"
EPOCH_S=$(timeout "$T_EPOCH" "$PY" - "$DATA_DIR" "$DEVICE" <<'PYEOF'
import sys, time, torch
from manifold_lab.datasets import load_cifar10
from manifold_lab.models import ResNet18
from manifold_lab.training import make_objective, train
x, y = load_cifar10(sys.argv[1], split="train")
model = ResNet18(3, 10, seed=0)
objective = make_objective("none", 0.0)  # plain cross-entropy, as the sweep's unregularised model
train(model, objective, (x[:1280], y[:1280]), epochs=1, lr=0.1, optimizer="sgd", batch_size=128,
      device=sys.argv[2], progress=False)  # warm-up: cuDNN autotuning, allocator
torch.cuda.synchronize()
t0 = time.perf_counter()
train(model, objective, (x, y), epochs=1, lr=0.1, optimizer="sgd", batch_size=128, device=sys.argv[2],
      augment="crop_flip", progress=False)
torch.cuda.synchronize()
print(f"{time.perf_counter() - t0:.2f}")
PYEOF
) || die "the training epoch failed or ran over ${T_EPOCH} s"
echo "epoch: ${EPOCH_S} s"

echo "== 3. one evaluate of a ResNet-18 checkpoint"
"$PY" -c "import torch; from manifold_lab.models import build_architecture; torch.save(build_architecture('resnet18').state_dict(), '$WORK/r18.pt')"
e0=$(date +%s)
timeout "$T_EVAL" "$PY" -m manifold_lab.run evaluate --dataset cifar10 --data-dir "$DATA_DIR" \
  --checkpoint "$WORK/r18.pt" --arch resnet18 --attack pgd_linf --device "$DEVICE" --out "$WORK/evaluate" \
  --no-progress || die "evaluate failed or ran over ${T_EVAL} s"
EVAL_S=$(( $(date +%s) - e0 ))

echo "== 4. numbers for the README"
"$PY" - "$EPOCH_S" "$EVAL_S" "$HOURS_PER_EPOCH_S" "$(( $(date +%s) - t0 ))" <<'PYEOF'
import sys
epoch, evaluate, factor, total = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"plain ResNet-18 epoch (50,000 images, batch 128): {epoch:.1f} s")
print(f"full cifar10 sweep estimate: {factor} x {epoch:.1f} s = {factor * epoch:.0f} GPU-hours")
print(f"evaluate of one ResNet-18 (fits, 100 points, PGD-Linf 8/255): {evaluate:.0f} s")
print(f"gpu_check total: {total:.0f} s")
PYEOF
