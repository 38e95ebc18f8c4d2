"""Estimate: device-hours of the full ``cifar10`` sweep from a measured per-epoch time.

For one model of the ``cifar10`` preset (ResNet-18, CIFAR variant, at the preset's
width; batch 128; SGD momentum 0.9 with weight decay 5e-4; crop + flip) and each
regulariser of its sweep (plain cross-entropy, gradient norm, smoothness, noise
augmentation, PGD-L2 with the preset's 10 steps), this times ``--steps`` training
steps (objective, backward, optimizer step, after ``--warmup`` untimed ones) on
random 3x32x32 images on ``--device``, extrapolates to one epoch of the preset's
``n_train`` (50,000) images (``ceil(n / batch)`` steps), and multiplies out the
sweep: ``epochs x n_seeds x (t_plain + sum_r n_strengths(r) t_r)``.

Not included: the metric evaluation of each model and the autoencoder/denoiser
fits (once per run), data loading (the trainer keeps tensors on the device), and
the paper's lr division for large gradient-norm weights (cost-neutral). Strengths
do not change the cost (eps 0 would skip the attack; non-zero values are used).
On a CPU the numbers are CPU-hours, not GPU-hours: say which when you quote them.

Run: ``python benchmarks/estimate_cifar10_gpu_hours.py --device cuda`` (a minute);
on a shared CPU ``--threads 2 --steps 2`` (several minutes: PGD-10 is 11 passes).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from manifold_lab.experiments import get_preset
from manifold_lab.models import ResNet18
from manifold_lab.training import make_objective
from manifold_lab.training.augment import get_augmentation
from manifold_lab.training.trainer import OPTIMIZERS

__all__ = ["estimate", "sweep_total_s", "format_report"]


def _time_steps(model, objective, spec, *, batch: int, steps: int, warmup: int, device, seed: int,
                image_size: int) -> float:
    """Mean seconds of one training step (objective + backward + optimizer step)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, image_size, image_size, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    opt = OPTIMIZERS[spec.optimizer](model.parameters(), spec.lr, spec.weight_decay)
    augment = get_augmentation(spec.augment)
    dev_gen = torch.Generator(device=device).manual_seed(seed)
    model.train()

    def step():
        xb = augment(x, dev_gen) if augment is not None else x
        opt.zero_grad(set_to_none=True)
        loss, _ = objective(model, xb, y, generator=dev_gen)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - t0) / steps


def estimate(*, device: str = "cpu", steps: int = 3, warmup: int = 1, width: int | None = None,
             batch: int | None = None, seeds: int | None = None, seed: int = 0,
             image_size: int = 32) -> dict:
    """Per-epoch seconds per regulariser and the sweep total (see the module docstring).

    ``width``/``batch``/``seeds``/``image_size`` override the preset's and CIFAR's
    (tests use tiny values).
    """
    preset = get_preset("cifar10")
    spec = preset.train
    batch = spec.batch_size if batch is None else batch
    width = preset.model.options.get("width", 64) if width is None else width
    steps_per_epoch = math.ceil(spec.n_train / batch)
    entries = [("none", 0.0, {}, 1)] + [(name, max(values), options, len(values))
                                        for name, values, options in preset.sweep]
    per_step, per_epoch, counts = {}, {}, {}
    for name, strength, options, count in entries:
        model = ResNet18(3, 10, width=width, seed=seed).to(device)
        objective = make_objective(name, strength, **options)
        per_step[name] = _time_steps(model, objective, spec, batch=batch, steps=steps, warmup=warmup,
                                     device=device, seed=seed, image_size=image_size)
        per_epoch[name] = per_step[name] * steps_per_epoch
        counts[name] = count
    n_seeds = preset.n_seeds if seeds is None else seeds
    return {"device": str(device), "width": width, "batch": batch, "steps_timed": steps,
            "steps_per_epoch": steps_per_epoch, "epochs": spec.epochs, "n_seeds": n_seeds,
            "models_per_seed": counts, "step_s": per_step, "epoch_s": per_epoch,
            "total_s": sweep_total_s(per_epoch, counts, epochs=spec.epochs, n_seeds=n_seeds)}


def sweep_total_s(epoch_s: dict, counts: dict, *, epochs: int, n_seeds: int) -> float:
    """``epochs x n_seeds x sum_r count_r x epoch_s[r]`` (``count_none`` = 1)."""
    return epochs * n_seeds * sum(counts[name] * epoch_s[name] for name in epoch_s)


def format_report(result: dict) -> str:
    lines = [f"device {result['device']}: ResNet-18 width {result['width']}, batch {result['batch']}, "
             f"{result['steps_timed']} timed steps each, {result['steps_per_epoch']} steps per epoch",
             f"{'regulariser':<20}{'s/step':>10}{'s/epoch':>12}{'models':>8}{'hours (all epochs)':>20}"]
    for name, epoch in result["epoch_s"].items():
        count = result["models_per_seed"][name] * result["n_seeds"]
        hours = count * epoch * result["epochs"] / 3600
        lines.append(f"{name:<20}{result['step_s'][name]:>10.3f}{epoch:>12.1f}{count:>8d}{hours:>20.1f}")
    total = result["total_s"] / 3600
    lines.append(f"full sweep: {sum(result['models_per_seed'].values()) * result['n_seeds']} models x "
                 f"{result['epochs']} epochs = {total:.1f} device-hours ({result['device']}, training only)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per regulariser")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds of the sweep (default: the preset's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(format_report(estimate(device=args.device, steps=args.steps, warmup=args.warmup, seeds=args.seeds)))
    if hasattr(os, "getloadavg"):
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
