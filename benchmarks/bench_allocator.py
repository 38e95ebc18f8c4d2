"""glibc's default ``malloc`` against ``manifold_lab._allocator.keep_freed_memory``.

Trains the ``mnist`` preset's ``SmallCNN`` (GELU, 32/64 channels, batch 64, 1-pixel
shifts, one torch thread) for one epoch under each objective the presets train, each
side in its own fresh process (the allocator's settings cannot be undone in a
process), the two sides taking turns, best of ``--repeats``. Per side: CPU seconds
(user + sys) and minor page faults of the epoch, measured inside the child with
``getrusage`` around the training only (imports and data set-up excluded); the
trained weights are hashed, and the script exits non-zero if the two sides' weights
differ. Absolute times depend on the machine and its load (printed); read the ratios.

    python benchmarks/bench_allocator.py                     # ~2 min on one idle core
    python benchmarks/bench_allocator.py --warm-up-mb 24     # processes that freed a large block first
    python benchmarks/bench_allocator.py --images 256 --repeats 1   # a smoke test

glibc adapts: once a process frees a mapped block of up to 32 MiB (an evaluation's batch
of perturbed images), it raises its thresholds to that block's size and stops returning
most memory. So the difference is that of fresh processes (a worker's first training, the
fits), and ``--warm-up-mb 24`` shows most of it vanish in a process that freed such a
block first (a block over 32 MiB changes nothing).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import subprocess
import sys

#: The objectives the image presets train, with a strength in their usual range.
OBJECTIVES = (("none", 0.0, {}), ("pgd_l2", 1.0, {"steps": 3}), ("gradient_norm", 1.0, {}),
              ("smoothness", 10.0, {}), ("noise_augmentation", 0.3, {}))
#: The mnist preset's classifier channels and batch size.
CHANNELS, BATCH = (32, 64), 64


def child(objective: str, images: int, tuned: bool, warm_up_mb: int = 0) -> dict:
    """One epoch in this process: ``{"cpu_s", "sys_s", "faults", "weights"}`` (a hash).
    ``warm_up_mb`` > 0 first allocates, touches and frees a block of that size, as an
    evaluation's large batches do in a worker that has evaluated a model."""
    import torch

    from manifold_lab._allocator import keep_freed_memory
    from manifold_lab.models import SmallCNN
    from manifold_lab.training import augment, make_objective, train

    torch.set_num_threads(1)
    applied = keep_freed_memory() if tuned else False
    strength, options = next((s, o) for name, s, o in OBJECTIVES if name == objective)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(images, 1, 28, 28, generator=gen), torch.randint(0, 10, (images,), generator=gen)
    net = SmallCNN(activation="gelu", channels=CHANNELS, seed=0)
    if warm_up_mb > 0:
        # glibc raises its mmap and trim thresholds when such a block is freed.
        torch.ones(warm_up_mb * 2**18)
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = train(net, make_objective(objective, strength, **options), data=(x, y), epochs=1, lr=2e-3,
                   batch_size=BATCH, augment=functools.partial(augment.shift, padding=1), seed=0,
                   progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    digest = hashlib.sha256()
    for name, tensor in sorted(result.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return {"cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "sys_s": after.ru_stime - before.ru_stime, "faults": after.ru_minflt - before.ru_minflt,
            "weights": digest.hexdigest(), "applied": applied}


def _in_process(objective: str, images: int, tuned: bool, warm_up_mb: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", objective, "--images", str(images), "--warm-up-mb", str(warm_up_mb)]
        + (["--tuned"] if tuned else []), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(objective: str, images: int, repeats: int, warm_up_mb: int = 0) -> dict:
    """Both sides, interleaved, best of ``repeats``: ``{side: child row}`` plus ``same``."""
    best: dict = {}
    for _ in range(repeats):
        for side, tuned in (("default", False), ("tuned", True)):
            row = _in_process(objective, images, tuned, warm_up_mb)
            if side not in best or row["cpu_s"] < best[side]["cpu_s"]:
                best[side] = row
    best["same"] = best["default"]["weights"] == best["tuned"]["weights"]
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="training images per epoch (default 2048)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many, interleaved (default 3)")
    parser.add_argument("--warm-up-mb", type=int, default=0,
                        help="first allocate and free a block of this many MiB in each process, as a worker "
                             "that has evaluated a model has (default 0: a fresh process)")
    parser.add_argument("--child", choices=[o[0] for o in OBJECTIVES], help=argparse.SUPPRESS)
    parser.add_argument("--tuned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.images < 1 or args.repeats < 1 or args.warm_up_mb < 0:
        parser.error("--images and --repeats must be at least 1, --warm-up-mb at least 0")
    if args.child:
        print(json.dumps(child(args.child, args.images, args.tuned, args.warm_up_mb)))
        return 0
    print(f"load average: {os.getloadavg()}; one process per side and repeat, 1 thread, {args.images} images, "
          f"warm-up block {args.warm_up_mb} MiB")
    print("\n| objective (SmallCNN 32/64, batch 64) | default CPU s | kept CPU s | speed-up | default sys s "
          "| kept sys s | default faults | kept faults | same weights |\n|---|---:|---:|---:|---:|---:|---:|---:|---|")
    ok = True
    for objective, _, _ in OBJECTIVES:
        row = bench(objective, args.images, args.repeats, args.warm_up_mb)
        d, t = row["default"], row["tuned"]
        ok &= row["same"] and t["applied"]
        print(f"| {objective} | {d['cpu_s']:.2f} | {t['cpu_s']:.2f} | {d['cpu_s'] / t['cpu_s']:.2f}x | "
              f"{d['sys_s']:.2f} | {t['sys_s']:.2f} | {d['faults']:,} | {t['faults']:,} | {row['same']} |",
              flush=True)
    if not ok:
        print("FAILED: the two allocators gave different weights, or the tuning was not applied")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
