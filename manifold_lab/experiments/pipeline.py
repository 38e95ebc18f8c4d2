"""One experiment end to end: sweep, regime labels, claims, reports, figures.

``run_experiment`` is what ``python -m manifold_lab.run NAME`` calls. Files in
the run directory (all written atomically):

- ``run.json`` — fingerprint and config of the run (written first; a rerun with
  another configuration into the same directory is refused);
- ``models/<id>.json`` — one per finished model (resume state);
- ``models.csv``, ``robustness_curves.csv``, ``summary.txt``, ``theorem_3_1.md``,
  ``fig_<regulariser>.png``, ``fig_sigma_curves.png``;
- ``results.json`` — written last and only when every model has finished (any
  stale ``results.json`` is removed before models are recomputed), so its
  presence means a complete run.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from tqdm import tqdm

from manifold_lab.experiments.claims import check_claims
from manifold_lab.experiments.plots import write_figures
from manifold_lab.experiments.presets import Preset, preset_to_dict, strength_meaning
from manifold_lab.experiments.regimes import RegimeThresholds, classify_regime, relative_on_sensitivity
from manifold_lab.experiments.reports import (
    atomic_write_json, atomic_write_text, csv_text, curves_csv_text,
    group_rows, read_json, summary_table,
)
from manifold_lab.experiments.sweep import load_finished, plan_jobs, run_fingerprint, run_sweep

__all__ = ["SCHEMA_VERSION", "assemble_results", "write_reports", "run_experiment"]

#: Version of the results.json layout (bump on incompatible changes). 2: data
#: specs per kind (``config.data`` holds only the kind's fields), ``config.model``
#: is ``{"name", "options"}``, sweep entries carry options (PGD steps moved there
#: from ``config.train``), ``config.reference`` names the regime reference and
#: ``bayes_optimal`` is null when the reference is the unregularised models.
SCHEMA_VERSION = 2


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
        "resumed_models": resumed,
        "bayes_optimal": reference,
        "models": models,
        "groups": groups,
        "claims": check_claims([g for g in groups if g["regularizer"] != "none"], unreg),
        "theorem_3_1": theorem,
    }


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
    put("summary.txt", summary_table(results["groups"], results["bayes_optimal"]) + "\n")
    if figures:
        written.extend(write_figures(results, out))
    if results_json:
        atomic_write_json(out / "results.json", results)
        written.append(out / "results.json")
    return written


def _check_run_dir(out: Path, preset: Preset, fingerprint: str, base_seed: int) -> dict:
    """The stored ``run.json`` of ``out`` ({} if none); ``ValueError`` if it is
    another configuration's."""
    run_file = out / "run.json"
    stored: dict = {}
    if run_file.exists():
        try:
            stored = read_json(run_file)
        except (OSError, ValueError):
            stored = {"fingerprint": None}
        if stored.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{out} holds a run of another configuration (preset "
                f"{stored.get('preset')!r}, seed {stored.get('base_seed')!r}, quick "
                f"{stored.get('quick')!r}); choose a new --out or delete that directory"
            )
    return stored


def run_experiment(
    preset: Preset,
    out_dir: str | os.PathLike,
    *,
    base_seed: int = 0,
    device: str = "cpu",
    jobs: int = 1,
    thresholds: RegimeThresholds | None = None,
    progress: bool = True,
    quick: bool | None = None,
    figures: bool = True,
) -> dict:
    """Run (or resume) ``preset`` into ``out_dir`` and write every report.

    Parameters
    ----------
    preset : Preset
    out_dir : path
        Created if missing. Finished models found there (same configuration) are
        reused; another configuration there is a ``ValueError``.
    base_seed, device, jobs
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
    t0 = time.perf_counter()
    thresholds = thresholds or preset.thresholds
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = run_fingerprint(preset, base_seed)
    previous = _check_run_dir(out, preset, fingerprint, base_seed)
    run_info = {
        "fingerprint": fingerprint, "preset": preset.name, "base_seed": base_seed,
        "quick": quick, "config": preset_to_dict(preset),
        # Wall-clock seconds of every invocation into this directory (interrupted
        # ones included), so a resumed run still reports what it cost in total.
        "invocations_s": list(previous.get("invocations_s", [])),
    }
    atomic_write_json(out / "run.json", run_info)
    plan = plan_jobs(preset, base_seed)
    finished = load_finished(out / "models", fingerprint)
    if any(job.id not in finished for job in plan) and (out / "results.json").exists():
        # Models will be recomputed: an old results.json must not pass for this run's.
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
                         on_done=on_done)
    finally:
        bar.close()
        run_info["invocations_s"].append(time.perf_counter() - t0)
        atomic_write_json(out / "run.json", run_info)
    results = assemble_results(preset, rows, thresholds=thresholds, base_seed=base_seed,
                               device=device, runtime_s=math.nan, resumed=resumed)
    write_reports(results, out, figures=figures, results_json=False)
    # Timed after the figures, so runtime_s is the whole invocation but imports.
    results["runtime_s"] = time.perf_counter() - t0
    run_info["invocations_s"][-1] = results["runtime_s"]
    results["runtime_total_s"] = sum(run_info["invocations_s"])
    atomic_write_json(out / "run.json", run_info)
    atomic_write_json(out / "results.json", results)
    return results

