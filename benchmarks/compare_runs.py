"""Compare two results.json files number by number (the "numbers unchanged" check).

    python benchmarks/compare_runs.py BEFORE/results.json AFTER/results.json [--explained FIELD ...]

Every number of every model row, the reference row, the seed groups, the claims
and the Theorem 3.1 tables is compared as stored (exact equality of the JSON
values, so "equal to the last printed digit" of results.json); for each field
that differs the maximum absolute and relative difference is printed, and every
regime label that changed. Runtimes (``runtime_s``, ``train_s``, ``eval_s``, ...)
and the fingerprint are ignored. Keys present on one side only are listed: under
``config`` they (and changed settings) are listed, not failures (a setting that
matters changes numbers, which are compared); elsewhere they are failures.
``schema_version`` is listed when it changes. ``--explained FIELD`` lists a field's differences without failing on them (for a
change the report explains). Exit status 0 when nothing unexplained differs, 1
otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict

#: Fields that measure time or identify a run, not results.
IGNORED = {"runtime_s", "runtime_total_s", "compute_s", "compute_cpu_s", "train_s", "eval_s", "train_cpu_s",
           "eval_cpu_s", "fingerprint",
           "resumed_models", "markdown", "time_s"}
#: Top-level fields expected to change with the code (listed, not failures).
VERSIONED = {"schema_version"}


def _key_of(item, index):
    if isinstance(item, dict):
        for key in ("id", "model"):
            if key in item:
                return str(item[key])
        if "regularizer" in item and "strength" in item:
            return f"{item['regularizer']}@{item['strength']}"
        if "sigma" in item:
            return f"sigma={item['sigma']}"
    return str(index)


def _walk(a, b, path, field, diffs, only, labels):
    """Record differences of ``a`` and ``b`` under ``path`` (``field``: last dict key)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key in IGNORED:
                continue
            if not path and key in VERSIONED:
                if a.get(key) != b.get(key):
                    only.append((f"config/{key}", "changed", f"{a.get(key)} -> {b.get(key)}"))
                continue
            sub = f"{path}.{key}" if path else key
            if key not in a or key not in b:
                only.append((sub, "after" if key not in a else "before",
                             b.get(key) if key not in a else a.get(key)))
                continue
            _walk(a[key], b[key], sub, key, diffs, only, labels)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            only.append((path, "length", f"{len(a)} -> {len(b)}"))
            return
        keyed = all(isinstance(x, dict) for x in a + b)
        for i, (x, y) in enumerate(zip(a, b)):
            kx, ky = _key_of(x, i), _key_of(y, i)
            if keyed and kx != ky:
                only.append((f"{path}[{i}]", "order", f"{kx} vs {ky}"))
                continue
            _walk(x, y, f"{path}[{kx}]", field, diffs, only, labels)
        return
    if a == b and type(a) is type(b):
        return
    if path.startswith("config"):
        # Settings are listed, not failures: a setting that matters changes numbers.
        only.append((path, "changed", f"{a!r} -> {b!r}"))
        return
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            not isinstance(a, bool) and not isinstance(b, bool) and a == b:
        return  # 1 vs 1.0 stored differently, same number
    numeric = [v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in (a, b)]
    if not all(numeric):
        labels.append((path, a, b))
        return
    # null is a non-finite number (results.json writes NaN/inf as null).
    diffs[field].append((path, math.nan if a is None else float(a), math.nan if b is None else float(b)))


def compare(before: dict, after: dict):
    diffs: dict[str, list] = defaultdict(list)
    only: list = []
    labels: list = []
    _walk(before, after, "", "", diffs, only, labels)
    return diffs, only, labels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--explained", action="append", default=[],
                   help="field whose differences are reported but do not fail")
    args = p.parse_args(argv)
    with open(args.before, encoding="utf-8") as fh:
        before = json.load(fh)
    with open(args.after, encoding="utf-8") as fh:
        after = json.load(fh)
    diffs, only, labels = compare(before, after)
    failed = False
    n_models = len(after.get("models", []))
    print(f"{args.before}\n  vs {args.after}  ({n_models} model rows)")
    for path, side, value in only:
        where = path.split(".")[0].split("/")[0] if path.startswith("config") else "results"
        kind = {"after": "added", "before": "removed"}.get(side, side)
        print(f"  [{where}] {kind}: {path} = {json.dumps(value)[:100]}")
        failed |= where != "config"
    for path, a, b in labels:
        print(f"  LABEL/TEXT CHANGED {path}: {a!r} -> {b!r}")
        failed = True
    for field, items in sorted(diffs.items()):
        finite = [(a, b) for _, a, b in items if math.isfinite(a) and math.isfinite(b)]
        nulls = len(items) - len(finite)
        abs_d = max((abs(b - a) for a, b in finite), default=math.nan)
        rel_d = max(((abs(b - a) / abs(a) if a != 0 else math.inf) for a, b in finite),
                    default=math.nan)
        tag = "explained" if field in args.explained else "DIFFERS"
        worst = max(items, key=lambda t: abs(t[2] - t[1]) if math.isfinite(t[2] - t[1]) else -1)
        extra = f", {nulls} null<->number" if nulls else ""
        print(f"  {tag} {field}: {len(items)} value(s){extra}, max abs diff {abs_d:.3g}, "
              f"max rel diff {rel_d:.3g} (largest at {worst[0]}: {worst[1]!r} -> {worst[2]!r})")
        failed |= field not in args.explained
    if not diffs and not labels:
        print("  every compared number and label is identical")
    print("  RESULT:", "DIFFERENT" if failed else "SAME")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
