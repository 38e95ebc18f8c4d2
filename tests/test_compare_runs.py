"""benchmarks/compare_runs.py: equal runs pass, any changed number or label fails."""

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from experiments_fakes import FAKE_PRESET, fake_rows
from manifold_lab.experiments.pipeline import assemble_results
from manifold_lab.experiments.regimes import RegimeThresholds
from manifold_lab.experiments.reports import to_jsonable

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"
_spec = importlib.util.spec_from_file_location("compare_runs", _PATH)
compare_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_runs)


@pytest.fixture
def results():
    res = assemble_results(FAKE_PRESET, fake_rows(), thresholds=RegimeThresholds(), base_seed=0,
                           device="cpu", runtime_s=1.0)
    return json.loads(json.dumps(to_jsonable(res)))


def _run(tmp_path, a, b, *extra):
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    return compare_runs.main([str(pa), str(pb), *extra])


def test_identical_runs_pass_and_runtimes_are_ignored(results, tmp_path, capsys):
    other = copy.deepcopy(results)
    other["runtime_s"] = 99.0
    other["models"][0]["train_s"] = 123.0
    other["config"]["reference"] = "something new"  # config changes are listed only
    assert _run(tmp_path, results, other) == 0
    assert "RESULT: SAME" in capsys.readouterr().out


def test_a_last_digit_change_or_a_label_change_fails(results, tmp_path, capsys):
    other = copy.deepcopy(results)
    other["models"][3]["score_cosine"] = results["models"][3]["score_cosine"] * (1 + 1e-15)
    assert _run(tmp_path, results, other) == 1
    out = capsys.readouterr().out
    assert "DIFFERS score_cosine: 1 value(s)" in out
    assert _run(tmp_path, results, other, "--explained", "score_cosine") == 0
    relabel = copy.deepcopy(results)
    relabel["models"][0]["regime"] = "excessive" if results["models"][0]["regime"] != "excessive" \
        else "weak"
    assert _run(tmp_path, results, relabel) == 1
    assert "LABEL/TEXT CHANGED models[" in capsys.readouterr().out
