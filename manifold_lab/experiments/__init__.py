"""Experiments: presets, sweeps over regularisers, regime labels, reports.

The top layer of the library (it imports every other layer; nothing imports it
but the command line, ``python -m manifold_lab.run``).

- ``reference``: the ground-truth interface every data kind provides
  (``Reference``, ``DataSpec``, the regime references ``BAYES_OPTIMAL`` and
  ``UNREGULARISED``);
- ``kinds``: one module per data kind (spec dataclass + build + registration);
- ``presets``: frozen dataclasses (``toy_sphere``, ``toy_subspace``, quick variants);
- ``seeds``: derived seeds and explicit generators;
- ``build``: model construction and training data;
- ``metric_fields``: every metric field declared once (results, CSV, summary);
- ``evaluate``: per-model metrics at held-out points;
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
from manifold_lab.experiments.kinds import KINDS, SignalDistractorSpec, VmfSphereSpec, register_kind
from manifold_lab.experiments.metric_fields import MetricField, metric_fields, register_metric
from manifold_lab.experiments.pipeline import assemble_results, run_experiment, write_reports
from manifold_lab.experiments.presets import (
    PRESETS, EvalSpec, ModelSpec, Preset, TrainSpec, get_preset, list_presets,
)
from manifold_lab.experiments.reference import (
    BAYES_OPTIMAL, UNREGULARISED, DataSpec, Reference, RegimeReference,
)
from manifold_lab.experiments.regimes import REGIMES, RegimeThresholds, classify_regime
from manifold_lab.experiments.sweep import Job, plan_jobs, run_sweep

__all__ = [
    "BAYES_OPTIMAL",
    "KINDS",
    "PRESETS",
    "REGIMES",
    "UNREGULARISED",
    "DataSpec",
    "EvalSpec",
    "Job",
    "MetricField",
    "ModelSpec",
    "Preset",
    "Reference",
    "RegimeReference",
    "RegimeThresholds",
    "SignalDistractorSpec",
    "TrainSpec",
    "VmfSphereSpec",
    "assemble_results",
    "check_claims",
    "classify_regime",
    "get_preset",
    "labels_in_order",
    "list_presets",
    "metric_fields",
    "plan_jobs",
    "register_kind",
    "register_metric",
    "run_experiment",
    "run_sweep",
    "write_reports",
]
