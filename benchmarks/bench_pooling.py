"""2x2 average pooling: ``nn.AvgPool2d(2)`` against ``models.pooling.AvgPool2x2`` (depthwise conv).

Measures, in one run, on the same inputs, with one torch thread:

1. the pooling layer alone, forward + backward, on the activations of ``SmallCNN``'s
   two blocks (``[64, c1, 28, 28]`` and ``[64, c2, 14, 14]``);
2. whole training steps of the ``mnist`` preset's ``SmallCNN`` (GELU, 32/64 channels,
   batch 64, 1-pixel shifts) under each objective the presets train: cross-entropy,
   PGD-L2 (3 steps), gradient norm, smoothness, noise augmentation;

the two sides interleaved, best of ``--repeats``. Every comparison also checks that
the two give bitwise the same numbers (pooled outputs and gradients; the trained
weights), and the script exits non-zero if they do not. Absolute times depend on the
machine and its load (``uptime`` is printed); read the ratios.

    python benchmarks/bench_pooling.py                 # ~1 min on one idle core
    python benchmarks/bench_pooling.py --images 256 --repeats 1   # a smoke test
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import torch
from torch import nn

from manifold_lab.models import SmallCNN
from manifold_lab.models.pooling import AvgPool2x2
from manifold_lab.training import augment, make_objective, train

#: The objectives the image presets train, with a strength in their usual range.
OBJECTIVES = (("none", 0.0, {}), ("pgd_l2", 1.0, {"steps": 3}), ("gradient_norm", 1.0, {}),
              ("smoothness", 10.0, {}), ("noise_augmentation", 0.3, {}))
#: The mnist preset's classifier channels and batch size.
CHANNELS, BATCH = (32, 64), 64


def _torch_pooling(net: SmallCNN) -> SmallCNN:
    for i, layer in enumerate(net.features):
        if isinstance(layer, AvgPool2x2):
            net.features[i] = nn.AvgPool2d(2)
    return net


def _interleaved(sides: dict, repeats: int) -> tuple[dict, dict]:
    """Run each of ``sides`` (name -> no-argument callable) ``repeats`` times, the sides
    taking turns: ``({name: least CPU seconds}, {name: last result})``."""
    times, results = {}, {}
    for _ in range(repeats):
        for name, fn in sides.items():
            start = time.process_time()
            results[name] = fn()
            times[name] = min(times.get(name, float("inf")), time.process_time() - start)
    return times, results


def bench_layer(shape: tuple[int, ...], repeats: int, passes: int = 20) -> dict:
    """Forward + backward of both poolings on ``shape``; ``{"torch_s", "ours_s", "same"}``."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))

    def run(pool):
        def once():
            for _ in range(passes):
                xr = x.clone().requires_grad_()
                out = pool(xr)
                (grad,) = torch.autograd.grad(out.square().sum(), xr)
            return out.detach(), grad
        return once

    times, results = _interleaved({"torch": run(nn.AvgPool2d(2)), "ours": run(AvgPool2x2())}, repeats)
    same = all(torch.equal(a, b) for a, b in zip(results["torch"], results["ours"]))
    return {"torch_s": times["torch"] / passes, "ours_s": times["ours"] / passes, "same": same}


def bench_training(objective: str, strength: float, options: dict, images: int, repeats: int) -> dict:
    """One epoch of ``images`` digits-sized random images with each pooling."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(images, 1, 28, 28, generator=gen), torch.randint(0, 10, (images,), generator=gen)

    def run(torch_pooling: bool):
        def once():
            net = SmallCNN(activation="gelu", channels=CHANNELS, seed=0)
            if torch_pooling:
                _torch_pooling(net)
            return train(net, make_objective(objective, strength, **options), data=(x, y), epochs=1, lr=2e-3,
                         batch_size=BATCH, augment=functools.partial(augment.shift, padding=1), seed=0,
                         progress=False).model.state_dict()
        return once

    times, weights = _interleaved({"torch": run(True), "ours": run(False)}, repeats)
    same = all(torch.equal(weights["torch"][k], weights["ours"][k]) for k in weights["torch"])
    steps = -(-images // BATCH)
    return {"torch_s": times["torch"] / steps, "ours_s": times["ours"] / steps, "same": same}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="training images per epoch (default 1024)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many, interleaved (default 3)")
    args = parser.parse_args(argv)
    if args.images < 1 or args.repeats < 1:
        parser.error("--images and --repeats must be at least 1")
    torch.set_num_threads(1)
    print(f"load average: {os.getloadavg()}; torch {torch.__version__}; 1 thread")
    ok = True
    print("\n| pooling input | AvgPool2d ms | AvgPool2x2 ms | speed-up | bitwise equal |\n|---|---:|---:|---:|---|")
    for shape in ((BATCH, CHANNELS[0], 28, 28), (BATCH, CHANNELS[1], 14, 14)):
        row = bench_layer(shape, args.repeats)
        ok &= row["same"]
        print(f"| {list(shape)} | {row['torch_s'] * 1e3:.2f} | {row['ours_s'] * 1e3:.2f} | "
              f"{row['torch_s'] / row['ours_s']:.2f}x | {row['same']} |")
    print("\n| training step (SmallCNN 32/64, batch 64) | AvgPool2d ms | AvgPool2x2 ms | speed-up | same weights |"
          "\n|---|---:|---:|---:|---|")
    for objective, strength, options in OBJECTIVES:
        row = bench_training(objective, strength, options, args.images, args.repeats)
        ok &= row["same"]
        print(f"| {objective} | {row['torch_s'] * 1e3:.1f} | {row['ours_s'] * 1e3:.1f} | "
              f"{row['torch_s'] / row['ours_s']:.2f}x | {row['same']} |", flush=True)
    if not ok:
        print("FAILED: the two poolings gave different numbers")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
