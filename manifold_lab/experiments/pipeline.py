"""One experiment end to end: sweep, regime labels, claims, reports, figures.

``run_experiment`` is what ``python -m manifold_lab.run NAME`` calls. Files in
the run directory (all written atomically):

- ``run.lock`` — held by the run writing the directory (a second one is refused);
- ``run.json`` — fingerprint and config of the run, and the seconds of every
  invocation (written first; a rerun with another configuration into the same
  directory is refused, and so is a non-empty directory without ``run.json``);
- ``models/<id>.json`` — one per finished model (resume state);
- ``models.csv``, ``robustness_curves.csv``, ``summary.txt``, ``theorem_3_1.md``,
  ``fig_<regulariser>.png``, ``fig_sigma_curves.png``;
- ``reference/`` — fits of kinds with learned ground truth (``DataSpec.fits_reference``);
- ``gallery.json``, ``fig_gallery.png``, ``fig_distractor.png`` — image kinds;
- ``results.json`` — written last and only when every model has finished (any
  stale ``results.json`` is removed before models are recomputed), so its
  presence means a complete run.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

from tqdm import tqdm

from manifold_lab.experiments.claims import NOISE_REGULARISER, check_claims, own_sigma_claim
from manifold_lab.experiments.figures import write_figures
from manifold_lab.experiments.presets import Preset, preset_to_dict, strength_meaning
from manifold_lab.experiments.regimes import RegimeThresholds, classify_regime, relative_on_sensitivity
from manifold_lab.experiments.reports import (
    atomic_write_json, atomic_write_text, csv_text, curves_csv_text,
    group_rows, peaks_text, summary_table,
)
from manifold_lab.experiments.backends import Backend
from manifold_lab.experiments.rundir import (
    MODELS_DIR, RunFile, RunLock, RunWarning, check_contents, check_out_path, read_run_file,
)
from manifold_lab.experiments.sweep import (
    REFERENCE_DIR, load_finished, plan_jobs, run_fingerprint, run_sweep,
)

__all__ = ["SCHEMA_VERSION", "assemble_results", "write_reports", "run_experiment", "check_preset",
           "check_run_dir", "preset_counts"]

#: Version of the results.json layout (bump on incompatible changes). 2: data
#: specs per kind (``config.data`` holds only the kind's fields), ``config.model``
#: is ``{"name", "options"}``, sweep entries carry options (PGD steps moved there
#: from ``config.train``), ``config.reference`` names the regime reference and
#: ``bayes_optimal`` is null when the reference is the unregularised models.
SCHEMA_VERSION = 2
#: Gallery gradient images of image kinds, by model id (see ``image_plots``).
GALLERY_FILE = "gallery.json"


def assemble_results(
    preset: Preset,
    rows: dict[str, dict],
    *,
    thresholds: RegimeThresholds,
    base_seed: int,
    device: str,
    runtime_s: float,
    resumed: int = 0,
) -> dict:
    """Build the results.json object from finished rows (pure: no I/O).

    Adds to each model row ``on_relative = R_T / R_T^ref`` and ``regime``, where
    ``R_T^ref`` comes from the data kind's regime reference (the Bayes-optimal
    model's row for exact kinds, the unregularised models otherwise); groups rows
    over seeds (each group labelled from its seed-mean numbers); checks the
    paper's claims per regulariser.
    """
    regime_reference = preset.data.regime_reference
    ref_id = regime_reference.job
    reference = dict(rows[ref_id]) if ref_id is not None else None
    models = [dict(row) for job_id, row in rows.items() if job_id != ref_id]
    on_ref = regime_reference.on_reference(
        reference, [r for r in models if r["regularizer"] == "none"])
    for row in models:
        row["on_relative"] = relative_on_sensitivity(row["on_robustness"], on_ref)
        row["regime"] = classify_regime(row["on_robustness"], row["off_robustness"], on_ref,
                                        thresholds)
    groups = group_rows(models)
    for g in groups:
        g["regime"] = classify_regime(g["on_robustness"], g["off_robustness"], on_ref, thresholds)
    unreg = next(g for g in groups if g["regularizer"] == "none")
    config = preset_to_dict(preset)
    config["thresholds"] = {"weak_ratio": thresholds.weak_ratio,
                            "excessive_on_fraction": thresholds.excessive_on_fraction}
    config.update(base_seed=base_seed, device=device, strength_meaning=strength_meaning(),
                  reference=regime_reference.name)
    theorem = [{"model": r["id"], **r.pop("theorem_3_1")}
               for r in [*([reference] if reference else []), *models] if "theorem_3_1" in r]
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": preset.name,
        "complete": True,
        "fingerprint": run_fingerprint(preset, base_seed),
        "config": config,
        "runtime_s": runtime_s,
        "runtime_total_s": runtime_s,
        "compute_s": sum(r.get("train_s", 0.0) + r.get("eval_s", 0.0) for r in rows.values()),
        "compute_cpu_s": sum(r.get("train_cpu_s", 0.0) + r.get("eval_cpu_s", 0.0) for r in rows.values()),
        "resumed_models": resumed,
        "bayes_optimal": reference,
        "models": models,
        "groups": groups,
        "claims": _claims(groups, unreg, models),
        "theorem_3_1": theorem,
    }


def _claims(groups: list[dict], unreg: dict, models: list[dict]) -> dict:
    """``check_claims`` per regulariser, with the noise-augmented models' own-sigma
    reading of the learned Bayes gradient where the rows have its curve."""
    claims = check_claims([g for g in groups if g["regularizer"] != "none"], unreg)
    if NOISE_REGULARISER in claims:
        own = own_sigma_claim(models)
        if own is not None:
            claims[NOISE_REGULARISER]["bayes_own_sigma"] = own
    return claims


def _theorem_markdown(results: dict) -> str:
    parts = [f"# Theorem 3.1 tables — {results['preset']}\n"]
    for entry in results["theorem_3_1"]:
        parts.append(f"## {entry['model']}\n\n{entry['markdown']}\n")
    return "\n".join(parts)


def write_reports(results: dict, out_dir: str | os.PathLike, *, figures: bool = True,
                  results_json: bool = True) -> list[Path]:
    """Write every report file, ``results.json`` last (unless ``results_json`` is
    False: the caller writes it); return the paths written."""
    out = Path(out_dir)
    written = []

    def put(name: str, text: str) -> None:
        atomic_write_text(out / name, text)
        written.append(out / name)

    put("models.csv", csv_text(results["models"]))
    reference = [results["bayes_optimal"]] if results["bayes_optimal"] else []
    put("robustness_curves.csv", curves_csv_text([*reference, *results["models"]]))
    put("theorem_3_1.md", _theorem_markdown(results))
    put("summary.txt", summary_table(results["groups"], results["bayes_optimal"]) + "\n\n"
        + peaks_text(results["claims"]) + "\n")
    galleries = {r["id"]: r["gallery"] for r in results["models"] if "gallery" in r}
    if galleries:
        # Gradient images of the gallery figure: kept beside results.json, not in it.
        atomic_write_json(out / GALLERY_FILE, galleries)
        written.append(out / GALLERY_FILE)
    if figures:
        written.extend(write_figures(results, out))
    if results_json:
        atomic_write_json(out / "results.json", without_galleries(results))
        written.append(out / "results.json")
    return written


def without_galleries(results: dict) -> dict:
    """``results`` with the model rows' ``gallery`` entries left out (they go to
    ``gallery.json``)."""
    if not any("gallery" in r for r in results["models"]):
        return results
    return {**results, "models": [{k: v for k, v in r.items() if k != "gallery"} for r in results["models"]]}


def _check_run_dir(out: Path, fingerprint: str, settings: dict) -> dict:
    """The stored ``run.json`` of ``out`` ({} if none), validated (see
    ``rundir.read_run_file``); ``RunDirError`` if ``out`` must not be written:
    a non-empty directory that is not a run directory, or another configuration's.
    Called under the run's lock (the check before the lock may have raced)."""
    check_contents(out)
    return read_run_file(out, fingerprint, settings)


def _settings(preset: Preset, base_seed: int, quick: bool | None) -> dict:
    """The configuration fields of ``run.json`` (what a refusal compares)."""
    return {"preset": preset.name, "base_seed": base_seed, "quick": quick, "config": preset_to_dict(preset)}


def preset_counts(preset: Preset) -> dict[str, dict[str, int]]:
    """What the preset draws from each data pool (``reference.POOLS``), by field name:
    every model's training set, the metric points and the accuracy points."""
    return {"train": {"train.n_train": preset.train.n_train},
            "eval": {"eval.n_points": preset.eval.n_points},
            "accuracy": {"eval.n_accuracy": preset.eval.n_accuracy}}


def check_preset(preset: Preset) -> None:
    """Every check of a preset's inputs that needs no work, in the order a user fixes
    them: data files and weights (``DataSpec.check_inputs``), then the counts the preset
    draws against the examples available (``DataSpec.check_counts``). One-line
    ``ValueError``; nothing is written."""
    preset.data.check_inputs()
    preset.data.check_counts(preset_counts(preset))


def check_run_dir(preset: Preset, out_dir: str | os.PathLike, *, base_seed: int = 0,
                  quick: bool | None = None) -> Path:
    """``out_dir`` as a ``Path`` if this run may write it; ``RunDirError`` (one line)
    otherwise: an empty path, a file, a non-empty directory that is not a run
    directory, a foreign or another configuration's ``run.json`` (naming the settings
    that differ). Writes nothing (no lock file) and warns nothing: the run repeats the
    check under its lock, where recoverable problems are reported."""
    out = check_out_path(out_dir)
    check_contents(out)
    if out.is_dir():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunWarning)
            read_run_file(out, run_fingerprint(preset, base_seed), _settings(preset, base_seed, quick))
    return out


def run_experiment(
    preset: Preset,
    out_dir: str | os.PathLike,
    *,
    base_seed: int = 0,
    device: str = "cpu",
    jobs: int | None = 1,
    thresholds: RegimeThresholds | None = None,
    progress: bool = True,
    quick: bool | None = None,
    figures: bool = True,
    backend: Backend | str = "local",
) -> dict:
    """Run (or resume) ``preset`` into ``out_dir`` and write every report.

    Parameters
    ----------
    preset : Preset
    out_dir : path
        Created if missing. Finished models found there (same configuration) are
        reused. Refused (``rundir.RunDirError``, a ``ValueError``): an empty path,
        another configuration's run, a non-empty directory that is not a run
        directory, a directory another run is writing (it is locked for the run).
    base_seed, device, jobs, backend
        See ``sweep.run_sweep``.
    thresholds : RegimeThresholds, optional
        Regime rules; default ``preset.thresholds``.
    progress : bool
        Show a progress bar (stderr) over models.
    quick : bool, optional
        Recorded in ``run.json`` only (whether the preset is the quick variant).
    figures : bool
        Write the PNG figures.

    Returns
    -------
    dict
        The results.json object.
    """
    thresholds = thresholds or preset.thresholds
    check_preset(preset)  # missing data, weights or images: an error before anything is written
    # Before the lock file is created in someone else's directory:
    out = check_run_dir(preset, out_dir, base_seed=base_seed, quick=quick)
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):
        return _run_locked(preset, out, base_seed=base_seed, device=device, jobs=jobs,
                           thresholds=thresholds, progress=progress, quick=quick,
                           figures=figures, backend=backend)


def _run_locked(preset: Preset, out: Path, *, base_seed, device, jobs, thresholds, progress,
                quick, figures, backend) -> dict:
    fingerprint = run_fingerprint(preset, base_seed)
    settings = _settings(preset, base_seed, quick)
    previous = _check_run_dir(out, fingerprint, settings)
    run_info = {
        "fingerprint": fingerprint, **settings,
        # Wall-clock seconds of every invocation into this directory (interrupted,
        # failed and killed ones included), so a resumed run reports its total cost.
        "invocations_s": list(previous.get("invocations_s", [])),
    }
    plan = plan_jobs(preset, base_seed)
    with RunFile(out, run_info) as run_file:
        if (out / "results.json").exists():
            # Models will be recomputed: an old results.json must not pass for this run's.
            # (Model files are read here only when there is such a file to judge.)
            finished = load_finished(out / MODELS_DIR, fingerprint, plan=plan, quiet=True)
            if any(job.id not in finished for job in plan):
                (out / "results.json").unlink()
        resumed = 0
        bar = tqdm(total=len(plan), desc=preset.name, unit="model", disable=not progress,
                   dynamic_ncols=True)

        def on_done(job, row, was_resumed):
            nonlocal resumed
            if was_resumed:
                resumed += 1
            bar.set_postfix_str(job.id + (" (resumed)" if was_resumed else ""), refresh=False)
            bar.update(1)

        try:
            rows = run_sweep(preset, out, base_seed=base_seed, device=device, jobs=jobs,
                             on_done=on_done, backend=backend)
        finally:
            bar.close()
        results = assemble_results(preset, rows, thresholds=thresholds, base_seed=base_seed,
                                   device=device, runtime_s=math.nan, resumed=resumed)
        if preset.data.fits_reference:
            # The fitted ground truth's quality figures (loaded from the run's cache).
            fitted = preset.data.build(base_seed, cache_dir=out / REFERENCE_DIR)
            results["reference_fits"] = fitted.fit_report()
        write_reports(results, out, figures=figures, results_json=False)
        # Timed after the figures, so runtime_s is the whole invocation but imports.
        results["runtime_s"] = run_file.elapsed()
        results["runtime_total_s"] = sum(run_info["invocations_s"][:-1]) + results["runtime_s"]
        run_file.finish(results["runtime_s"])
    results = without_galleries(results)
    atomic_write_json(out / "results.json", results)
    return results
