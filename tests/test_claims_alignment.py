"""Alignment claims: peaks per field, agreement of two fields, the own-sigma reading."""

from __future__ import annotations

import math

from manifold_lab.experiments.claims import agreement_claim, alignment_peaks, own_sigma_claim


def _group(strength, regime, **fields):
    g = {"strength": strength, "regime": regime}
    for name, (mean, lo, hi) in fields.items():
        g.update({name: mean, name + "_min": lo, name + "_max": hi})
    return g


def test_alignment_peaks_report_the_maximum_its_spread_and_the_margin():
    gs = [_group(0.1, "weak", score_cosine=(0.1, 0.05, 0.15), sum_logits_cosine=(-0.2, -0.3, -0.1)),
          _group(1.0, "bayes_aligned", score_cosine=(0.3, 0.25, 0.35), sum_logits_cosine=(0.4, 0.3, 0.5)),
          _group(10.0, "excessive", score_cosine=(0.2, 0.1, 0.3), sum_logits_cosine=(math.nan, math.nan, math.nan))]
    unreg = {"score_cosine": 0.05, "sum_logits_cosine": -0.25}
    peaks = alignment_peaks(gs, unreg)
    assert set(peaks) == {"score_cosine", "sum_logits_cosine"}  # fields without data are left out
    assert peaks["score_cosine"] == {"strength": 1.0, "value": 0.3, "min": 0.25, "max": 0.35,
                                     "regime": "bayes_aligned", "unregularised": 0.05,
                                     "margin": 0.3 - 0.05}
    assert peaks["sum_logits_cosine"]["strength"] == 1.0  # NaN is never a peak
    assert math.isclose(peaks["sum_logits_cosine"]["margin"], 0.65)


def test_agreement_of_two_fields_on_the_most_aligned_strength():
    gs = [{"strength": 1.0, "bayes_grad_cosine": 0.2, "score_cosine": 0.5},
          {"strength": 2.0, "bayes_grad_cosine": 0.4, "score_cosine": 0.1}]
    assert agreement_claim(gs) == {"by_bayes_grad_cosine": 2.0, "by_score_cosine": 1.0, "agree": False}
    gs[1]["score_cosine"] = 0.9
    assert agreement_claim(gs)["agree"] is True
    assert agreement_claim([{"strength": 1.0, "score_cosine": 0.5}]) is None


def test_own_sigma_claim_averages_seeds_and_compares_with_the_nearest_curve_sigma():
    curve = (lambda values: {"sigmas": [0.1, 0.3, 1.0], "cosine": values})
    rows = [
        {"regularizer": "noise_augmentation", "strength": 0.3, "bayes_grad_curve": curve([0.1, 0.5, 0.2])},
        {"regularizer": "noise_augmentation", "strength": 0.3, "bayes_grad_curve": curve([0.1, 0.3, 0.4])},
        {"regularizer": "noise_augmentation", "strength": 0.12, "bayes_grad_curve": curve([0.1, 0.2, 0.3])},
        {"regularizer": "pgd_l2", "strength": 0.3, "bayes_grad_curve": curve([0.9, 0.0, 0.0])},
    ]
    own = own_sigma_claim(rows)
    assert own["strengths"] == [0.12, 0.3]
    # 0.12: peak at 1.0, nearest (in log) 0.1 -> not at its own sigma; 0.3: seed mean [0.1, 0.4, 0.3].
    assert own["peak_sigmas"] == [1.0, 0.3] and own["nearest_sigmas"] == [0.1, 0.3]
    assert own["at_own_sigma"] == [False, True]
    assert [round(v, 12) for v in own["curves"][1]] == [0.1, 0.4, 0.3]
    assert own_sigma_claim([r for r in rows if r["regularizer"] == "pgd_l2"]) is None
