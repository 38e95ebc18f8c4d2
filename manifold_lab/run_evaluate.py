"""``python -m manifold_lab.run evaluate``: the metric fields of given checkpoints, no training.

    python -m manifold_lab.run evaluate --dataset cifar10 --data-dir D --checkpoint A.pt B.pt \\
        --arch preact_resnet18 --normalization cifar10 [--attack pgd_linf] [--lpips-dir L] [--out O]

Bad input (unknown architecture, missing data directory, a checkpoint that does not
load or fit, a corrupt data file, an ``--out`` holding other files) exits with
status 2 and one line on stderr before anything is written; a failure while
fitting or evaluating exits with 1, Ctrl-C with 130. The work is in
``experiments.checkpoint_eval`` and ``experiments.checkpoint_data``; this module
only parses and reports.
"""

from __future__ import annotations

import argparse
import sys
import time

from manifold_lab._allocator import keep_freed_memory
from manifold_lab._cli import (
    EXIT_FAILED, EXIT_USAGE, PROG, OneLineParser, UsageError, parse_int, parse_positive, resolve_device,
)
# Torch-free: --help and argument errors answer before torch and matplotlib are imported
# (the experiment modules are imported in _prepare and _run, once the arguments are good).
from manifold_lab._evaluate_index import (
    ARCHITECTURE_CLASSES, ATTACK_NAMES, DATASETS, DEFAULT_EPS, DEFAULT_STEPS, NORMALIZATIONS, ZOO_ENTRIES, AttackSpec,
    zoo_entry,
)

__all__ = ["main", "parse_evaluate_args", "parse_normalization"]

EXIT_INTERRUPTED = 130
#: Images fitted on by default (the autoencoder and the denoiser), per data set.
DEFAULT_FIT_IMAGES = {"cifar10": 10000, "imagenet": 5000}


def _build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"{PROG} evaluate",
                      description="Measure the metric fields of given checkpoints (no training).")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-dir", required=True,
                   help="cifar10: the folder holding cifar-10-batches-py (or that folder); imagenet: an "
                        "ImageFolder directory (one subfolder per class, e.g. the validation set)")
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="FILE",
                   help="torch files: a state_dict, or one under 'state_dict'/'model' (RobustBench, MadryLab)")
    p.add_argument("--arch", required=True,
                   help=f"architecture: {', '.join(ARCHITECTURE_CLASSES)}, or a RobustBench entry DATASET/ID "
                        "(e.g. cifar10/Hendrycks2019Using; the list: training.zoo_entries)")
    p.add_argument("--out", help="output directory (default runs/evaluate-DATASET-<timestamp>)")
    p.add_argument("--n-classes", default=None, help="outputs of the models (default: 10 CIFAR, 1000 ImageNet)")
    p.add_argument("--normalization", default="auto",
                   help="'auto' (default: the checkpoint's normaliser buffers, or the named entry's; an error "
                        f"when there are none), 'none', {', '.join(NORMALIZATIONS)}, or MEAN1,MEAN2,MEAN3,STD1,STD2,STD3")
    p.add_argument("--clamp", default="auto", choices=("auto", "on", "off"),
                   help="clamp inputs to [0, 1] before the normaliser (auto: on for MadryLab checkpoints, whose "
                        "normaliser clamps)")
    p.add_argument("--attack", default=None, choices=ATTACK_NAMES,
                   help="also report accuracy under this PGD attack (not AutoAttack)")
    p.add_argument("--eps", default=None,
                   help="attack radius in [0, 1] pixels (default: CIFAR-10 Linf 8/255, L2 0.5; ImageNet Linf "
                        "4/255, L2 3.0); a fraction such as 8/255 is accepted")
    p.add_argument("--steps", default=str(DEFAULT_STEPS), help="attack steps, step size 2.5 eps / steps (default 10)")
    p.add_argument("--lpips-dir", default=None, metavar="DIR",
                   help="folder with LPIPS-AlexNet's alexnet-owt-7be5be79.pth and alex.pth: adds score_lpips")
    p.add_argument("--allow-code", action="store_true",
                   help="load checkpoints that need code to unpickle (runs that code: trusted files only)")
    p.add_argument("--score-model", default=None, metavar="DIR",
                   help="a diffusers save_pretrained DDPM directory (default: the in-project denoiser, "
                        "fitted on the data and cached in OUT/reference)")
    p.add_argument("--score-sigma", default=None,
                   help="noise level of the score, pixel scale [0, 1] (default 0.25 CIFAR, 0.6 ImageNet)")
    p.add_argument("--n-points", default="100", help="images carrying the gradient metrics (default 100)")
    p.add_argument("--n-accuracy", default=None,
                   help="images for accuracy (default: --n-points; the same images first)")
    p.add_argument("--n-samples", default="16", help="noise draws per image and sigma of Def. 1 (default 16)")
    p.add_argument("--n-directions", default="8", help="directions per image of the paper's variant (default 8)")
    p.add_argument("--fit-images", default=None,
                   help="images the autoencoder and denoiser are fitted on (default 10000 CIFAR, 5000 ImageNet)")
    p.add_argument("--fit-epochs", default=None, help="epochs of both fits (default 20 autoencoder, 8 denoiser)")
    p.add_argument("--image-size", default="224", help="imagenet: centre crop side (default 224)")
    p.add_argument("--resize", default=None, help="imagenet: shorter side before the crop (default 256 for 224)")
    p.add_argument("--score-size", default="64",
                   help="imagenet: resolution of the in-project denoiser and autoencoder (default 64)")
    p.add_argument("--seed", default="0", help="seed of the image selection, fits and noise (default 0)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N, mps")
    p.add_argument("--no-progress", action="store_true", help="no line per finished checkpoint")
    return p


def parse_normalization(text: str):
    """``"auto"``, ``None`` (``"none"``), a ``models.NORMALIZATIONS`` name or ``(means, stds)`` from
    ``MEAN1,...,STD1,...``."""
    if text == "auto":
        return "auto"
    if text == "none":
        return None
    if text in NORMALIZATIONS:
        return text
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 6:
        raise UsageError(f"--normalization must be auto, none, {', '.join(NORMALIZATIONS)} or six numbers "
                         f"MEAN1,MEAN2,MEAN3,STD1,STD2,STD3, got {text!r}")
    return values[:3], values[3:]


def parse_evaluate_args(argv: list[str]) -> argparse.Namespace:
    """Parse the arguments after ``evaluate``; ``UsageError`` (one line) on bad input."""
    a = _build_parser().parse_args(argv)
    entry = zoo_entry(a.arch)
    if a.arch not in ARCHITECTURE_CLASSES and entry is None:
        raise UsageError(f"--arch {a.arch!r} is not a known architecture or RobustBench entry; choose one of "
                         f"{', '.join(ARCHITECTURE_CLASSES)}, or DATASET/ID from training.zoo_entries "
                         f"(e.g. {next(iter(ZOO_ENTRIES))})")
    if entry is not None and entry.dataset != a.dataset:
        raise UsageError(f"--arch {a.arch} is a {entry.dataset} model but --dataset is {a.dataset}")
    a.clamp = {"auto": None, "on": True, "off": False}[a.clamp]
    a.steps = parse_int("--steps", a.steps, minimum=1)
    a.eps = _parse_eps(a.eps)
    if a.eps is not None and a.attack is None:
        raise UsageError("--eps needs --attack pgd_linf or pgd_l2")
    a.attack = None if a.attack is None else AttackSpec(
        a.attack, DEFAULT_EPS[(a.dataset, a.attack)] if a.eps is None else a.eps, a.steps)
    for flag in ("n_points", "n_samples", "n_directions", "image_size", "score_size"):
        setattr(a, flag, parse_int(f"--{flag.replace('_', '-')}", getattr(a, flag), minimum=1))
    for flag in ("n_classes", "n_accuracy", "fit_images", "fit_epochs", "resize"):
        if getattr(a, flag) is not None:
            setattr(a, flag, parse_int(f"--{flag.replace('_', '-')}", getattr(a, flag), minimum=1))
    a.seed = parse_int("--seed", a.seed, minimum=0)
    a.score_sigma = parse_positive("--score-sigma", a.score_sigma)
    a.normalization = parse_normalization(a.normalization)
    a.n_accuracy = a.n_accuracy or a.n_points
    a.fit_images = a.fit_images or DEFAULT_FIT_IMAGES[a.dataset]
    if a.n_classes is None:
        a.n_classes = ARCHITECTURE_CLASSES[entry.arch if entry is not None else a.arch]
    return a


def _parse_eps(text: str | None) -> float | None:
    """``--eps``: a number or a fraction ``A/B`` (``8/255``), finite and >= 0."""
    if text is None:
        return None
    try:
        num, _, den = text.partition("/")
        value = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        value = float("nan")
    if not (0 <= value < float("inf")):
        raise UsageError(f"--eps must be a number >= 0 or a fraction such as 8/255, got {text!r}")
    return value


def _config(a: argparse.Namespace, device: str) -> dict:
    from manifold_lab.experiments.checkpoint_eval import SIGMA, SIGMAS

    norm = a.normalization
    return {"dataset": a.dataset, "data_dir": a.data_dir, "checkpoints": list(a.checkpoint), "arch": a.arch,
            "n_classes": a.n_classes,
            "normalization": norm if norm is None or isinstance(norm, str) else {"mean": norm[0], "std": norm[1]},
            "allow_code": a.allow_code, "score_model": a.score_model, "score_sigma": a.score_sigma,
            "n_points": a.n_points, "n_accuracy": a.n_accuracy, "n_samples": a.n_samples,
            "n_directions": a.n_directions, "sigma": SIGMA, "sigmas": list(SIGMAS), "fit_images": a.fit_images,
            "fit_epochs": a.fit_epochs, "image_size": a.image_size, "resize": a.resize,
            "score_size": a.score_size, "seed": a.seed, "device": device, "clamp": a.clamp,
            "attack": None if a.attack is None else {"name": a.attack.name, "eps": a.attack.eps,
                                                     "steps": a.attack.steps, "step_size_factor": 2.5},
            "lpips_dir": a.lpips_dir}


def _prepare(a: argparse.Namespace):
    """Every check that needs no fitting: device, out dir, checkpoints, data."""
    from manifold_lab.experiments.checkpoint_data import EvalDataOptions, load_eval_data
    from manifold_lab.experiments.checkpoint_eval import check_checkpoints, check_eval_dir, write_marker
    from manifold_lab.experiments.rundir import RunDirError
    from manifold_lab.metrics.lpips import weight_files_in

    device = resolve_device(a.device)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        out = check_eval_dir(a.out if a.out is not None else f"runs/evaluate-{a.dataset}-{stamp}")
        check_checkpoints(a.checkpoint, a.arch, n_classes=a.n_classes, normalization=a.normalization,
                          allow_code=a.allow_code, clamp=a.clamp)
        if a.lpips_dir is not None:
            weight_files_in(a.lpips_dir)  # FileNotFoundError (one line) naming the missing file
        opt = EvalDataOptions(dataset=a.dataset, data_dir=a.data_dir, n_points=a.n_points,
                              n_accuracy=a.n_accuracy,
                              seed=a.seed, score_model=a.score_model, score_sigma=a.score_sigma,
                              n_fit=a.fit_images, fit_epochs=a.fit_epochs, n_directions=a.n_directions,
                              n_classes=a.n_classes, image_size=a.image_size, resize=a.resize,
                              score_size=a.score_size, device=device, lpips_dir=a.lpips_dir)
        data = load_eval_data(opt)
        write_marker(out, _config(a, device))  # every check passed: the directory is ours from here on
    except (RunDirError, ValueError, OSError, ImportError) as exc:  # CheckpointError, DatasetError are ValueErrors
        raise UsageError(_one_line(exc)) from None
    return device, out, opt, data


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(a: argparse.Namespace) -> int:
    from manifold_lab.experiments.checkpoint_data import build_reference
    from manifold_lab.experiments.checkpoint_eval import (
        SCHEMA, SCHEMA_VERSION, eval_spec, evaluate_checkpoints, summary_text, write_results,
    )
    from manifold_lab.experiments.reports import present_fields
    from manifold_lab.experiments.sweep import REFERENCE_DIR

    device, out, opt, data = _prepare(a)
    keep_freed_memory()  # manifold_lab._allocator: no page-fault round trip per batch
    t0 = time.perf_counter()
    progress = None if a.no_progress else (lambda line: print(line, flush=True))
    try:
        if progress:
            progress(f"evaluate {a.dataset}: {len(a.checkpoint)} checkpoint(s), --arch {a.arch}, {a.n_points} "
                     f"points, device {device}, out {out}")
        reference = build_reference(data, opt, cache_dir=out / REFERENCE_DIR)
        spec = eval_spec(a.n_points, a.n_accuracy, a.n_samples)
        rows = evaluate_checkpoints(a.checkpoint, a.arch, reference, spec, n_classes=a.n_classes,
                                    normalization=a.normalization, allow_code=a.allow_code, clamp=a.clamp,
                                    attack=a.attack, device=device, seed=a.seed, progress=progress)
        results = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "complete": True,
                   "config": _config(a, device), "reference_fits": reference.fit_report(),
                   "fields": list(present_fields(rows)), "runtime_s": time.perf_counter() - t0, "models": rows}
        write_results(out, results)
    except KeyboardInterrupt:
        print(f"{PROG} evaluate: interrupted; no results.json written (fits kept in {out / REFERENCE_DIR})",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"{PROG} evaluate: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print()
    print(summary_text(rows))
    print(f"\nwall time {results['runtime_s']:.1f} s; results in {out / 'results.json'}")
    return 0


def main(argv: list[str]) -> int:
    """``evaluate`` entry point (``argv`` without the word ``evaluate``); returns the exit status."""
    try:
        return _run(parse_evaluate_args(argv))
    except UsageError as exc:
        print(f"{PROG} evaluate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # during the checks: nothing was written
        print(f"{PROG} evaluate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
