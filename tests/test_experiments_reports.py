"""Reports on fake rows: atomic writes, JSON/CSV contents, labels, summary, figures."""

import csv
import io
import json
import math
import os

import pytest

from experiments_fakes import FAKE_PRESET, REF_ON, fake_rows
from manifold_lab.experiments.pipeline import assemble_results, write_reports
from manifold_lab.experiments.regimes import RegimeThresholds, classify_regime
from manifold_lab.experiments.metric_fields import model_fields
from manifold_lab.experiments.reports import (
    atomic_write_json, atomic_write_text, csv_fields, csv_text,
    curves_csv_text, group_rows, summary_table, to_jsonable,
)

REQUIRED_MODEL_FIELDS = ("regularizer", "strength", "seed", "accuracy", "on_robustness",
                         "off_robustness", "alignment_ratio", "tangent_fraction",
                         "score_cosine", "cond_score_cosine", "regime")


@pytest.fixture(scope="module")
def results():
    return assemble_results(FAKE_PRESET, fake_rows(), thresholds=RegimeThresholds(),
                            base_seed=0, device="cpu", runtime_s=1.5)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})  # not serialisable: fails mid-way
    assert json.loads(target.read_text()) == {"a": 1}  # old content intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temp files


def test_atomic_write_replaces_and_is_readable_by_others(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new ü")
    assert target.read_text(encoding="utf-8") == "new ü"
    assert os.stat(target).st_mode & 0o044  # group/other readable, unlike mkstemp's 0600


def test_json_has_no_nan_or_inf(tmp_path):
    obj = {"a": math.nan, "b": [math.inf, 1.0, (2.0, -math.inf)], "c": {"d": 3}}
    assert to_jsonable(obj) == {"a": None, "b": [None, 1.0, [2.0, None]], "c": {"d": 3}}
    atomic_write_json(tmp_path / "r.json", obj)
    json.loads((tmp_path / "r.json").read_text())  # strict parsers accept it


def test_results_schema(results):
    for key in ("models", "bayes_optimal", "theorem_3_1", "config", "runtime_s"):
        assert key in results
    assert results["complete"] is True
    assert len(results["models"]) == FAKE_PRESET.n_models
    for row in results["models"]:
        for f in REQUIRED_MODEL_FIELDS:
            assert f in row, f
    for f in (f.name for f in model_fields()):
        assert f in results["bayes_optimal"], f
    assert {r["regularizer"] for r in results["models"]} == {"none", "gradient_norm",
                                                             "noise_augmentation"}
    assert [t["model"] for t in results["theorem_3_1"]] == ["bayes_optimal", "none-s0"]
    assert results["config"]["thresholds"] == {"weak_ratio": 1.0, "excessive_on_fraction": 0.5}
    json.dumps(to_jsonable(results), allow_nan=False)


def test_labels_apply_the_rules_with_the_bayes_reference(results):
    t = RegimeThresholds()
    for row in results["models"]:
        assert row["on_relative"] == pytest.approx(row["on_robustness"] / REF_ON)
        assert row["regime"] == classify_regime(row["on_robustness"], row["off_robustness"],
                                                REF_ON, t)
    # The closed-form fake story (see experiments_fakes) crosses both thresholds:
    # on/ref < 0.5 iff x > 1.095 and ratio < 1 iff x > 0.0267 (x = strength / 1).
    labels = results["claims"]["gradient_norm"]["labels"]
    assert labels == ["weak"] * 3 + ["bayes_aligned"] * 3 + ["excessive"] * 2
    assert results["claims"]["gradient_norm"]["labels_in_order"]


def test_thresholds_change_labels_not_numbers():
    rows = fake_rows()
    strict = assemble_results(FAKE_PRESET, rows, thresholds=RegimeThresholds(0.1, 0.9),
                              base_seed=0, device="cpu", runtime_s=0.0)
    loose = assemble_results(FAKE_PRESET, rows, thresholds=RegimeThresholds(10.0, 0.01),
                             base_seed=0, device="cpu", runtime_s=0.0)
    assert [r["on_robustness"] for r in strict["models"]] == \
        [r["on_robustness"] for r in loose["models"]]
    assert {r["regime"] for r in loose["models"]} == {"bayes_aligned"}
    assert "bayes_aligned" not in {r["regime"] for r in strict["models"]}


def test_group_rows_averages_over_seeds(results):
    rows = [r for r in results["models"] if r["regularizer"] == "gradient_norm"
            and r["strength_index"] == 2]
    g = next(g for g in group_rows(results["models"])
             if g["regularizer"] == "gradient_norm" and g["strength"] == rows[0]["strength"])
    for f in ("accuracy", "on_robustness", "score_cosine"):
        assert g[f] == pytest.approx(sum(r[f] for r in rows) / len(rows))
        assert g[f + "_min"] == min(r[f] for r in rows)
        assert g[f + "_max"] == max(r[f] for r in rows)
    assert g["seeds"] == [0, 1]


def test_csv_rows_match_json_rows(results):
    text = csv_text(results["models"])
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert tuple(parsed[0].keys()) == csv_fields(results["models"])
    # Fields of other kinds (MetricField.needs) are not columns of an exact kind's CSV.
    assert "signal_sensitivity" in csv_fields() and "signal_sensitivity" not in parsed[0]
    assert set(csv_fields(results["models"])) < set(csv_fields())
    assert len(parsed) == len(results["models"])
    for row, line in zip(results["models"], parsed):
        assert line["id"] == row["id"] and line["regime"] == row["regime"]
        assert float(line["score_cosine"]) == row["score_cosine"]  # repr round-trips floats


def test_curves_csv_has_one_line_per_model_and_sigma(results):
    text = curves_csv_text([results["bayes_optimal"], *results["models"]])
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == (1 + len(results["models"])) * len(FAKE_PRESET.eval.sigmas)
    assert parsed[0]["id"] == "bayes_optimal"


def test_summary_table_lists_every_group(results):
    table = summary_table(results["groups"], results["bayes_optimal"])
    lines = [ln for ln in table.splitlines() if ln.strip()]
    assert lines[0].split()[:3] == ["regularizer", "strength", "acc"]
    body = lines[2:lines.index("columns:")]
    assert len(body) == 1 + len(results["groups"])  # Bayes + one per (regulariser, strength)
    assert body[0].startswith("bayes_optimal")
    assert sum(ln.startswith("gradient_norm") for ln in body) == 8
    assert any(ln.rstrip().endswith("EE") for ln in body)  # both seeds excessive somewhere


def test_summary_table_ends_with_a_legend_of_every_column(results):
    """Every column header is explained after the table; metric columns by their
    MetricField.doc, so a newly registered field gets its entry without a change here."""
    from manifold_lab.experiments.metric_fields import metric_fields

    table = summary_table(results["groups"], results["bayes_optimal"]).splitlines()
    headers = table[0].split()
    legend = table[table.index("columns:") + 1:]
    explained = {ln.split()[0]: ln for ln in legend if ln.startswith("  ")}
    assert set(headers) <= set(explained), set(headers) - set(explained)
    docs = {f.header: f.doc for f in metric_fields() if f.header}
    for header in ("tau", "cos", "cos_c", "A", "R_T/R_T*"):
        assert header in headers and explained[header].endswith(docs[header])
    assert "W = weak" in explained["seeds"] and "E = excessive" in explained["seeds"]
    assert legend[-1].startswith("the first row is the exact Bayes-optimal model")


def test_write_reports_writes_everything_and_results_last(tmp_path, results):
    written = write_reports(results, tmp_path)
    assert written[-1].name == "results.json"
    names = {p.name for p in tmp_path.iterdir()}
    assert {"models.csv", "robustness_curves.csv", "summary.txt", "theorem_3_1.md",
            "fig_gradient_norm.png", "fig_noise_augmentation.png", "fig_sigma_curves.png",
            "results.json"} <= names
    for p in tmp_path.glob("*.png"):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert json.loads((tmp_path / "results.json").read_text())["complete"] is True
