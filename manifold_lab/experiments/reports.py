"""Reports: atomic JSON/CSV writes, seed aggregation and the printed summary table.

Every file is written to a temporary name in the target directory, flushed,
fsynced and renamed over the target (``os.replace`` is atomic on POSIX and
Windows), so a reader never sees a half-written file and an interrupted run never
leaves a truncated ``results.json``. JSON has no NaN/inf: non-finite floats are
written as ``null``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Iterable, Sequence

from manifold_lab._io import atomic_write_bytes
from manifold_lab.experiments.metric_fields import metric_fields, numeric_field_names

__all__ = [
    "csv_fields",
    "present_fields",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "read_json",
    "to_jsonable",
    "csv_text",
    "curves_csv_text",
    "format_cell",
    "group_rows",
    "summary_table",
]

#: Columns of ``models.csv`` before and after the metric fields.
_CSV_HEAD = ("id", "regularizer", "strength", "strength_index", "seed")
_CSV_TAIL = ("regime", "epochs_run", "train_s", "eval_s", "train_cpu_s", "eval_cpu_s")


def present_fields(rows: Iterable[dict]) -> tuple[str, ...]:
    """The metric fields (``numeric_field_names`` order) that some row has: a
    kind-specific field (``MetricField.needs``) only where the kind provides it."""
    keys = set().union(*(row.keys() for row in rows))
    return tuple(f for f in numeric_field_names() if f in keys)


def csv_fields(rows: Iterable[dict] | None = None) -> tuple[str, ...]:
    """Columns of ``models.csv`` (one row per trained model, the scalar fields of
    results.json): identity, every metric field (``metric_fields``; with ``rows``,
    those present in them), regime, timings."""
    names = numeric_field_names() if rows is None else present_fields(rows)
    return (*_CSV_HEAD, *names, *_CSV_TAIL)


def to_jsonable(obj):
    """Recursively convert tuples to lists and non-finite floats to ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically; non-finite floats become ``null``."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike):
    """Read a JSON file written by ``atomic_write_json``."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def csv_text(rows: Iterable[dict], fields: Sequence[str] | None = None) -> str:
    """CSV with a header ``fields`` (default ``csv_fields()``); missing or non-finite
    values are empty cells."""
    rows = list(rows)
    fields = csv_fields(rows) if fields is None else fields
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_value(row.get(f)) for f in fields])
    return buf.getvalue()


#: Identity columns of a sweep's curves CSV, and the values of the reference model's row.
_CURVE_IDENTITY = ("id", "regularizer", "strength", "seed")
_CURVE_DEFAULTS = {"id": "bayes_optimal", "regularizer": "bayes_optimal"}


def curves_csv_text(rows: Iterable[dict], identity: Sequence[str] = _CURVE_IDENTITY) -> str:
    """Long-format CSV of the robustness curves: one line per (model, sigma), the
    ``identity`` columns of each row first (a sweep's by default; the reference
    model's row, without them, is named ``bayes_optimal``)."""
    keys = ("on", "off", "on_stderr", "off_stderr")
    flat = []
    for row in rows:
        curve = row["robustness_curve"]
        for i, sigma in enumerate(curve["sigmas"]):
            flat.append({
                **{k: row.get(k, _CURVE_DEFAULTS.get(k)) for k in identity},
                "sigma": sigma,
                **{k: curve[k][i] for k in keys},
            })
    return csv_text(flat, (*identity, "sigma", *keys))


def _mean(values: Sequence[float | None]) -> float:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def group_rows(rows: Sequence[dict]) -> list[dict]:
    """Average model rows over seeds, one group per ``(regularizer, strength)``.

    Each group has the seed-mean of every metric field (``metric_fields``:
    model fields and ``on_relative``), the per-seed minimum and maximum of each (``<field>_min``,
    ``<field>_max``, for seed bands), ``seeds`` and ``regimes`` (per-seed labels).
    Groups keep the input order of first appearance.
    """
    order: list[tuple[str, float]] = []
    members: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        key = (row["regularizer"], row["strength"])
        if key not in members:
            order.append(key)
            members[key] = []
        members[key].append(row)
    names = present_fields(rows)
    groups = []
    for key in order:
        rs = sorted(members[key], key=lambda r: r["seed"])
        group = {"regularizer": key[0], "strength": key[1], "seeds": [r["seed"] for r in rs]}
        for f in names:
            vals = [r.get(f) for r in rs]
            finite = [v for v in vals if v is not None and math.isfinite(v)]
            group[f] = _mean(vals)
            group[f + "_min"] = min(finite) if finite else math.nan
            group[f + "_max"] = max(finite) if finite else math.nan
        group["regimes"] = [r.get("regime") for r in rs]
        groups.append(group)
    return groups


_ABBREV = {"weak": "W", "bayes_aligned": "B", "excessive": "E", None: "?"}
#: Legend lines of the summary table's columns that are not metric fields.
_IDENTITY_LEGEND = {
    "regularizer": "training regulariser (none: the unregularised models)",
    "strength": "regulariser strength (its meaning per regulariser: results.json config.strength_meaning)",
    "regime": "label of the seed-mean numbers: weak (R_N/R_T above the weak ratio), excessive (R_T/R_T* "
              "below the excessive fraction), else bayes_aligned (thresholds: results.json config.thresholds)",
    "seeds": "each seed's own label, in seed order: " + ", ".join(
        f"{a} = {r}" for r, a in _ABBREV.items() if r is not None) + ", ? = none",
}

def _table_columns(present: set[str]) -> list[tuple[str, str, str]]:
    """``(header, key, format)`` of the summary table: identity, the metric fields
    that have a ``header`` (and are in ``present``), in declaration order, then the labels."""
    return [("regularizer", "regularizer", "{}"), ("strength", "strength", "{:.3g}"),
            *((f.header, f.name, f.fmt) for f in metric_fields()
              if f.header is not None and f.name in present),
            ("regime", "regime", "{}"), ("seeds", "seed_regimes", "{}")]


def legend_lines(headers: Sequence[str], *, reference_row: bool = False) -> list[str]:
    """``header  meaning`` for each column of a summary table, the metric columns'
    meanings from their ``MetricField.doc`` (so a new field's column explains itself);
    ``reference_row``: the table starts with the exact Bayes-optimal model's row."""
    docs = {f.header: f.doc for f in metric_fields() if f.header is not None}
    docs.update(_IDENTITY_LEGEND)
    width = max(len(h) for h in headers)
    lines = ["columns:"]
    lines += [f"  {h.ljust(width)}  {docs.get(h) or '(no description)'}" for h in headers]
    lines.append(f"  {'-'.ljust(width)}  a missing or undefined value (a ratio over zero, a field the kind lacks)")
    if reference_row:
        lines.append("the first row is the exact Bayes-optimal model, the regime reference R_T*")
    return lines


def format_cell(fmt: str, value) -> str:
    """``fmt.format(value)``, or ``-`` for a missing or non-finite number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


def summary_table(groups: Sequence[dict], bayes: dict | None) -> str:
    """A fixed-width text table: the reference model's row (``bayes``; none when
    the regime reference is the unregularised models), then one row per group.

    ``groups`` come from ``group_rows`` with a ``regime`` label added (the label
    of the seed-mean numbers); the ``seeds`` column abbreviates each seed's own
    label (W = weak, B = bayes_aligned, E = excessive).
    """
    lines = []
    columns = _table_columns(set(present_fields(groups)))
    table = []
    if bayes is not None:
        table.append(dict(bayes, regularizer="bayes_optimal", strength=None, regime="(reference)",
                          on_relative=1.0, seed_regimes=""))
    for g in groups:
        table.append(dict(g, seed_regimes="".join(_ABBREV.get(r, "?") for r in g["regimes"])))
    cells = [[format_cell(fmt, row.get(key)) for _, key, fmt in columns] for row in table]
    headers = [h for h, _, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    left = {0, 1, len(widths) - 2, len(widths) - 1}  # text columns; numbers right-aligned

    def join(values):
        return "  ".join(v.ljust(w) if i in left else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    lines.append(join(headers))
    lines.append("  ".join("-" * w for w in widths))
    previous = None
    for row, c in zip(table, cells):
        if previous is not None and row["regularizer"] != previous:
            lines.append("")
        previous = row["regularizer"]
        lines.append(join(c))
    lines.append("")
    lines.extend(legend_lines(headers, reference_row=bayes is not None))
    return "\n".join(lines)


def peaks_text(claims: dict) -> str:
    """Where each alignment field peaks, per regulariser (``claims[...]["peaks"]``):
    one line per field, ``value [seed min, max] at strength (regime) vs unregularised``."""
    lines = ["alignment peaks (seed mean [seed min, max] at strength, regime; unregularised value):"]
    for name, claim in claims.items():
        peaks = claim.get("peaks", {})
        if not peaks:
            continue
        lines.append(f"  {name}:")
        width = max(len(f) for f in peaks)
        for field, p in peaks.items():
            spread = (f" [{format_cell('{:.3f}', p['min'])}, {format_cell('{:.3f}', p['max'])}]"
                      if p.get("min") is not None else "")
            lines.append(f"    {field.ljust(width)}  {p['value']:.3f}{spread} at {p['strength']:g} "
                         f"({p['regime']}); unregularised {format_cell('{:.3f}', p['unregularised'])}")
        most = claim.get("most_aligned")
        if most is not None:
            lines.append(f"    most aligned by bayes_grad_cosine at {most['by_bayes_grad_cosine']:g}, by score_cosine "
                         f"at {most['by_score_cosine']:g}: {'agree' if most['agree'] else 'disagree'}")
        own = claim.get("bayes_own_sigma")
        if own is not None:
            pairs = ", ".join(f"{s:g}->{p:g}" for s, p in zip(own["strengths"], own["peak_sigmas"]))
            lines.append(f"    learned-Bayes cosine peaks at sigma (training sigma -> peak): {pairs}; "
                         f"at its own sigma: {sum(own['at_own_sigma'])} of {len(own['at_own_sigma'])}")
    return "\n".join(lines)
