"""The paper's §5 claims, checked on a finished sweep (measured, never tuned).

For each regulariser, on seed-mean numbers over its strength grid:

1. **ratio falls** — the off/on ratio ``R_N/R_T`` decreases with strength while the
   model is not excessive (docs/theory.md: in the excessive regime both sensitivities
   vanish and the ratio is meaningless, so those strengths are excluded). Reported:
   Spearman rank correlation of ratio vs strength over the unregularised model
   (strength 0) and the non-excessive strengths, the unregularised ratio and the
   minimum ratio; the claim holds when the correlation is negative and the
   minimum is below the unregularised ratio.
2. **ordered regimes** — labels visit ``weak -> bayes_aligned -> excessive`` in
   that order (never stepping back) and all three occur.
3. **score peak** — ``score_cosine`` peaks at a ``bayes_aligned`` strength and the
   peak is above the unregularised model's value (the margin is reported).
4. **where each alignment peaks** — for every alignment field the rows have
   (:data:`ALIGNMENT_FIELDS`: both protocols of image kinds, the exact ones of
   synthetic kinds), the strength of its seed-mean maximum, that value with its
   seed min..max, the regime there, the unregularised value and the margin
   (``peaks``).
5. **the learned Bayes gradient** (rows with ``bayes_grad_cosine``): whether the
   noise-augmented models' cosine-vs-sigma curves (``bayes_grad_curve``) peak at
   their own training sigma (:func:`own_sigma_claim`), and whether
   ``bayes_grad_cosine`` and ``score_cosine`` pick the same strength as the most
   aligned (:func:`agreement_claim`).
6. **distractor ratio** (rows with ``signal_sensitivity``, the ``fmnist_distractor``
   kind; the paper's Figure 5) — the ratio signal / distractor sensitivity of the
   robust models is above the standard (unregularised) model's: reported per
   strength, with the booleans ``distractor_ratio_above_standard_all`` (every
   strength) and ``_any``.
"""

from __future__ import annotations

import math
from typing import Sequence

from manifold_lab.experiments.regimes import REGIMES

__all__ = ["labels_in_order", "spearman", "check_claims", "alignment_peaks", "ALIGNMENT_FIELDS",
           "own_sigma_claim", "agreement_claim"]

#: Alignment fields whose peak over the strength grid is reported (those present).
ALIGNMENT_FIELDS = ("score_cosine", "cond_score_cosine", "bayes_grad_cosine", "bayes_grad_ssim",
                    "bayes_grad_lpips", "avg_score_cosine", "score_ssim", "score_lpips",
                    "sum_logits_cosine", "sum_logits_ssim", "sum_logits_lpips")
#: The regulariser whose strength is a noise level (its models are read at their own sigma).
NOISE_REGULARISER = "noise_augmentation"


def labels_in_order(labels: Sequence[str]) -> bool:
    """True when ``labels`` never step back in ``weak < bayes_aligned < excessive``
    and all three regimes occur."""
    ranks = [REGIMES.index(label) for label in labels]
    monotone = all(a <= b for a, b in zip(ranks, ranks[1:]))
    return monotone and set(ranks) == set(range(len(REGIMES)))


def _ranks(values: Sequence[float]) -> list[float]:
    # Average ranks for ties, so the statistic is symmetric in equal values.
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of two equal-length sequences (NaN if < 3 points
    or a sequence is constant)."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs equal lengths, got {len(x)} and {len(y)}")
    if len(x) < 3:
        return math.nan
    rx, ry = _ranks(list(x)), _ranks(list(y))
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return math.nan
    return sxy / math.sqrt(sxx * syy)


def check_claims(groups: Sequence[dict], unregularised: dict) -> dict:
    """Evaluate the three claims per regulariser.

    Parameters
    ----------
    groups : list of dict
        Seed-mean rows from ``reports.group_rows`` with a ``regime`` label each;
        rows of ``regularizer == "none"`` are ignored.
    unregularised : dict
        The seed-mean unregularised group (``off_on_ratio``, ``score_cosine``).

    Returns
    -------
    dict
        ``{regulariser: {...}}`` with ``labels``, ``strengths``, the numbers behind
        each claim and booleans ``ratio_falls``, ``labels_in_order``,
        ``score_peak_in_bayes_aligned``, ``score_peak_above_unregularised``.
    """
    out = {}
    names = []
    for g in groups:
        if g["regularizer"] != "none" and g["regularizer"] not in names:
            names.append(g["regularizer"])
    for name in names:
        gs = sorted((g for g in groups if g["regularizer"] == name), key=lambda g: g["strength"])
        labels = [g["regime"] for g in gs]
        kept = [g for g in gs if g["regime"] != "excessive"]
        rho = spearman([0.0] + [g["strength"] for g in kept],
                       [unregularised["off_on_ratio"]] + [g["off_on_ratio"] for g in kept])
        min_ratio = min((g["off_on_ratio"] for g in kept), default=math.nan)
        peak = max(gs, key=lambda g: g["score_cosine"])
        out[name] = {
            "strengths": [g["strength"] for g in gs],
            "labels": labels,
            "ratio_unregularised": unregularised["off_on_ratio"],
            "ratio_min_not_excessive": min_ratio,
            "ratio_spearman_not_excessive": rho,
            "ratio_falls": bool(rho < 0 and min_ratio < unregularised["off_on_ratio"]),
            "labels_in_order": labels_in_order(labels),
            "score_peak_strength": peak["strength"],
            "score_peak": peak["score_cosine"],
            "score_peak_regime": peak["regime"],
            "score_unregularised": unregularised["score_cosine"],
            "score_peak_margin": peak["score_cosine"] - unregularised["score_cosine"],
            "score_peak_in_bayes_aligned": peak["regime"] == "bayes_aligned",
            "score_peak_above_unregularised": bool(
                peak["score_cosine"] > unregularised["score_cosine"]
            ),
        }
        out[name]["peaks"] = alignment_peaks(gs, unregularised)
        agreement = agreement_claim(gs)
        if agreement is not None:
            out[name]["most_aligned"] = agreement
        if "signal_sensitivity" in unregularised:
            out[name].update(_distractor_claim(gs, unregularised))
    return out


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def alignment_peaks(gs: Sequence[dict], unregularised: dict, fields: Sequence[str] = ALIGNMENT_FIELDS) -> dict:
    """Per alignment field present: where its seed mean peaks over ``gs`` (one
    regulariser's groups) and how that compares with the unregularised model.

    Returns
    -------
    dict
        ``{field: {"strength", "value", "min", "max", "regime", "unregularised",
        "margin"}}`` (``min``/``max``: the seed range at the peak; ``margin`` = value
        minus the unregularised value); fields with no finite value are left out.
    """
    out = {}
    for f in fields:
        finite = [g for g in gs if _finite(g.get(f))]
        if not finite:
            continue
        peak = max(finite, key=lambda g: g[f])
        base = unregularised.get(f)
        out[f] = {"strength": peak["strength"], "value": peak[f], "min": peak.get(f + "_min"),
                  "max": peak.get(f + "_max"), "regime": peak["regime"],
                  "unregularised": base if _finite(base) else math.nan,
                  "margin": peak[f] - base if _finite(base) else math.nan}
    return out


def _half_ratio(g: dict) -> float:
    den = g["distractor_sensitivity"]
    return g["signal_sensitivity"] / den if den > 0 else math.inf


def _distractor_claim(gs: Sequence[dict], unregularised: dict) -> dict:
    """Claim 4 for one regulariser's groups (sorted by strength)."""
    standard = _half_ratio(unregularised)
    ratios = [_half_ratio(g) for g in gs]
    return {"distractor_ratio": ratios, "distractor_ratio_standard": standard,
            "distractor_ratio_above_standard_all": bool(ratios) and all(r > standard for r in ratios),
            "distractor_ratio_above_standard_any": any(r > standard for r in ratios)}


def agreement_claim(gs: Sequence[dict], a: str = "bayes_grad_cosine", b: str = "score_cosine") -> dict | None:
    """Whether fields ``a`` and ``b`` pick the same group (strength) of ``gs`` as the most
    aligned (seed means): ``{"by_<a>", "by_<b>", "agree"}``; ``None`` if either is missing."""
    fa = [g for g in gs if _finite(g.get(a))]
    fb = [g for g in gs if _finite(g.get(b))]
    if not fa or not fb:
        return None
    best_a, best_b = max(fa, key=lambda g: g[a]), max(fb, key=lambda g: g[b])
    return {f"by_{a}": best_a["strength"], f"by_{b}": best_b["strength"],
            "agree": best_a["strength"] == best_b["strength"]}


def own_sigma_claim(rows: Sequence[dict], regulariser: str = NOISE_REGULARISER) -> dict | None:
    """For each strength (training noise sigma) of ``regulariser``: the sigma at which the
    seed-mean ``bayes_grad_curve`` peaks, the curve sigma nearest the training sigma, and
    whether the two coincide (``None`` without such rows).

    Returns
    -------
    dict
        ``{"strengths", "peak_sigmas", "nearest_sigmas", "at_own_sigma" (bools),
        "curve_sigmas", "curves" (seed-mean cosines per strength)}``.
    """
    picked = [r for r in rows if r.get("regularizer") == regulariser and "bayes_grad_curve" in r]
    if not picked:
        return None
    by_strength: dict[float, list[dict]] = {}
    for r in picked:
        by_strength.setdefault(r["strength"], []).append(r["bayes_grad_curve"])
    out = {"strengths": [], "peak_sigmas": [], "nearest_sigmas": [], "at_own_sigma": [], "curves": []}
    sigmas = None
    for strength in sorted(by_strength):
        curves = by_strength[strength]
        sigmas = curves[0]["sigmas"]
        mean = [sum(c["cosine"][i] for c in curves) / len(curves) for i in range(len(sigmas))]
        peak = sigmas[max(range(len(sigmas)), key=lambda i: mean[i])]
        nearest = min(sigmas, key=lambda s: abs(math.log(s) - math.log(strength)))
        out["strengths"].append(strength)
        out["peak_sigmas"].append(peak)
        out["nearest_sigmas"].append(nearest)
        out["at_own_sigma"].append(peak == nearest)
        out["curves"].append(mean)
    out["curve_sigmas"] = sigmas
    return out
