"""Experiments: presets, sweeps over regularisers, regime labels, reports.

The top layer of the library (it imports every other layer; nothing imports it
but the command line, ``python -m manifold_lab.run``).

- ``presets``: frozen dataclasses (``toy_sphere``, ``toy_subspace``, quick variants);
- ``build``: distribution/model construction and derived seeds;
- ``evaluate``: per-model metrics at held-out on-manifold points;
- ``regimes``: weak / bayes_aligned / excessive rules (thresholds are parameters);
- ``claims``: the paper's §5 claims checked on a finished sweep;
- ``sweep``: the job grid and resume; ``backends``: where jobs run (``local``
  worker processes, ``ray`` tasks on a local instance or a cluster);
- ``rundir``: the run directory's lock, safety checks, validation of its files and
  the accounting of every invocation's time;
- ``reports``, ``plots``: atomic JSON/CSV/PNG output and the summary table;
- ``pipeline``: ``run_experiment``, all of the above end to end.
"""

from manifold_lab.experiments.claims import check_claims, labels_in_order
from manifold_lab.experiments.pipeline import assemble_results, run_experiment, write_reports
from manifold_lab.experiments.presets import (
    PRESETS, DataSpec, EvalSpec, ModelSpec, Preset, TrainSpec, get_preset, list_presets,
)
from manifold_lab.experiments.regimes import REGIMES, RegimeThresholds, classify_regime
from manifold_lab.experiments.sweep import Job, plan_jobs, run_sweep

__all__ = [
    "PRESETS",
    "REGIMES",
    "DataSpec",
    "EvalSpec",
    "Job",
    "ModelSpec",
    "Preset",
    "RegimeThresholds",
    "TrainSpec",
    "assemble_results",
    "check_claims",
    "classify_regime",
    "get_preset",
    "labels_in_order",
    "list_presets",
    "plan_jobs",
    "run_experiment",
    "run_sweep",
    "write_reports",
]
