"""Figures: the paper's Figure-3 analogue per regulariser, and sensitivity vs sigma.

Uses matplotlib's object API with the Agg canvas (no pyplot, so no global
backend or figure state is touched).

``fig_<regulariser>.png`` has four panels (2 x 2) sharing a log strength axis:
(a) on/off-manifold sensitivity ``R_T``, ``R_N`` (seed mean, band = seed
min..max) with the Bayes-optimal and unregularised values as horizontal lines;
(b) the ratio ``R_N/R_T`` with the ``weak`` threshold; (c) accuracy;
(d) gradient alignment: the cosine of ``grad log p(y|x)`` with the exact
Bayes-optimal gradient and the class-conditional score (exact kinds), or with the
learned score, its noise average and, for the paper's released protocol, the cosine
of the sum-of-logits gradient with the score (image kinds); curves without data are
left out of plot and legend. The background of every panel is shaded by the regime label of each
strength (seed-mean numbers).
"""

from __future__ import annotations

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter


__all__ = ["REGIME_COLORS", "new_figure", "figure_regulariser", "figure_sigma_curves"]

REGIME_COLORS = {"weak": "#f4cccc", "bayes_aligned": "#d9ead3", "excessive": "#d9d9d9"}
_ON, _OFF = "#1f77b4", "#d62728"
_DPI = 120


def new_figure(width: float, height: float):
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _edges(strengths: list[float]) -> list[float]:
    """Shading boundaries: geometric midpoints, padded half a step at both ends."""
    logs = [math.log10(s) for s in strengths]
    if len(logs) == 1:
        return [10 ** (logs[0] - 0.5), 10 ** (logs[0] + 0.5)]
    mids = [(a + b) / 2 for a, b in zip(logs, logs[1:])]
    first = logs[0] - (mids[0] - logs[0])
    last = logs[-1] + (logs[-1] - mids[-1])
    return [10 ** v for v in (first, *mids, last)]


def _shade(ax, strengths, labels) -> None:
    edges = _edges(strengths)
    for lo, hi, label in zip(edges, edges[1:], labels):
        ax.axvspan(lo, hi, color=REGIME_COLORS.get(label, "white"), lw=0, zorder=0)
    ax.set_xlim(edges[0], edges[-1])


def _has(groups, key) -> bool:
    """Whether any group has a finite ``key`` (a curve without data gets no legend entry)."""
    return any(g.get(key) is not None and math.isfinite(g[key]) for g in groups)


def _band(ax, xs, groups, key, color, label, marker="o"):
    if not _has(groups, key):
        return
    nan = (lambda v: math.nan if v is None else v)
    mean = [nan(g[key]) for g in groups]
    ax.fill_between(xs, [nan(g[key + "_min"]) for g in groups], [nan(g[key + "_max"]) for g in groups],
                    color=color, alpha=0.25, lw=0, zorder=2)
    ax.plot(xs, mean, marker=marker, ms=4, color=color, label=label, zorder=3)


def _hline(ax, value, color, style, label=None):
    # Log axes cannot show values <= 0; such reference lines are left out.
    if value is None or not math.isfinite(value):
        return
    if ax.get_yscale() == "log" and value <= 0:
        return
    ax.axhline(value, color=color, ls=style, lw=1.2, label=label, zorder=1)


#: A log-axis reference line further than this factor outside the models' range
#: is listed as text instead of drawn, so it does not squash the curves (the
#: Bayes-optimal R_N on the sphere is ~1e-10, eight decades below any model).
_OFF_SCALE_FACTOR = 30.0


def _log_references(ax, refs, note_at=(0.98, 0.02)) -> None:
    """Draw ``(value, color, style, label)`` lines on a log axis; note off-scale ones."""
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    notes = []
    for value, color, style, label in refs:
        if value is None or not math.isfinite(value) or value <= 0:
            continue
        if lo / _OFF_SCALE_FACTOR <= value <= hi * _OFF_SCALE_FACTOR:
            _hline(ax, value, color, style, label)
        else:
            notes.append(f"{label} = {value:.1e} (off scale)")
    if notes:
        x, y = note_at
        ax.text(x, y, "\n".join(notes), transform=ax.transAxes,
                ha="right" if x > 0.5 else "left", va="bottom" if y < 0.5 else "top",
                fontsize=6, bbox=dict(facecolor="white", alpha=0.8, lw=0))


def figure_regulariser(results: dict, regulariser: str):
    """The Figure-3 analogue for one regulariser (a matplotlib ``Figure``)."""
    groups = sorted((g for g in results["groups"] if g["regularizer"] == regulariser),
                    key=lambda g: g["strength"])
    unreg = next(g for g in results["groups"] if g["regularizer"] == "none")
    bayes = results["bayes_optimal"] or {}  # no reference model: no dashed lines
    xs = [g["strength"] for g in groups]
    labels = [g["regime"] for g in groups]
    thresholds = results["config"]["thresholds"]
    n_seeds = len(groups[0]["seeds"]) if groups else 0

    fig = new_figure(10, 7.2)
    # Fixed margins instead of tight_layout, which costs seconds on log axes.
    axes = fig.subplots(2, 2, sharex=True,
                        gridspec_kw=dict(left=0.08, right=0.98, bottom=0.08, top=0.87,
                                         wspace=0.22, hspace=0.2)).ravel()
    for ax in axes:
        _shade(ax, xs, labels)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # within a decade its labels overlap
        ax.grid(True, which="major", alpha=0.3, zorder=1)
    for ax in axes[2:]:
        meaning = results["config"].get("strength_meaning", {}).get(regulariser, regulariser)
        ax.set_xlabel(f"strength: {meaning}", fontsize=8)

    ax = axes[0]
    ax.set_yscale("log")
    _band(ax, xs, groups, "on_robustness", _ON, r"$R_T$ on-manifold")
    _band(ax, xs, groups, "off_robustness", _OFF, r"$R_N$ off-manifold", marker="s")
    _log_references(ax, [
        (bayes.get("on_robustness"), _ON, "--", r"Bayes $R_T$"),
        (bayes.get("off_robustness"), _OFF, "--", r"Bayes $R_N$"),
        (unreg["on_robustness"], _ON, ":", r"unreg. $R_T$"),
        (unreg["off_robustness"], _OFF, ":", r"unreg. $R_N$"),
    ], note_at=(0.98, 0.9))
    sigma = results["config"]["eval"]["sigma"]
    ax.set_title(f"(a) sensitivity at $\\sigma$={sigma:g} (higher = less robust)", fontsize=9)
    ax.set_ylabel(r"$E[(f(x+u)-f(x))^2]$", fontsize=8)
    ax.legend(fontsize=6, loc="best", ncol=2)

    ax = axes[1]
    ax.set_yscale("log")
    _band(ax, xs, groups, "off_on_ratio", "#6a3d9a", r"$R_N/R_T$")
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    if lo > 0 and math.isfinite(hi) and math.floor(math.log10(lo)) < math.floor(math.log10(hi)):
        # Several decades: "6x10^0"-style minor labels clutter; within one decade they are
        # the only labels the axis has.
        ax.yaxis.set_minor_formatter(NullFormatter())
    _log_references(ax, [
        (thresholds["weak_ratio"], "black", "-", f"weak threshold {thresholds['weak_ratio']:g}"),
        (bayes.get("off_on_ratio"), "#6a3d9a", "--", "Bayes"),
        (unreg["off_on_ratio"], "#6a3d9a", ":", "unregularised"),
    ], note_at=(0.02, 0.02))
    ax.set_title("(b) off/on ratio (meaningless when excessive)", fontsize=9)
    ax.set_ylabel(r"$R_N / R_T$", fontsize=8)
    ax.legend(fontsize=6, loc="best")

    exact = results["config"].get("reference", "bayes_optimal") == "bayes_optimal"
    ax = axes[2]
    _band(ax, xs, groups, "accuracy", "#333333", "accuracy")
    _hline(ax, bayes.get("accuracy"), "#333333", "--", "Bayes")
    _hline(ax, unreg["accuracy"], "#333333", ":", "unregularised")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_title("(c) accuracy (" + ("noisy held-out samples" if exact else "test images") + ")", fontsize=9)
    ax.legend(fontsize=6, loc="best")

    ax = axes[3]
    _band(ax, xs, groups, "score_cosine", "#2ca02c",
          r"cos($\nabla \log p(y|x)$, Bayes grad)" if exact else r"cos($\nabla \log p(y|x)$, score)")
    _band(ax, xs, groups, "cond_score_cosine", "#ff7f0e", r"cos($\nabla \log p(y|x)$, class score)", marker="s")
    if not exact:  # on exact kinds bayes_grad_cosine is score_cosine itself
        _band(ax, xs, groups, "bayes_grad_cosine", "#9467bd", r"cos($\nabla \log p(y|x)$, learned Bayes grad)",
              marker="D")
    _band(ax, xs, groups, "avg_score_cosine", "#17becf", r"cos($\nabla \log p(y|x)$, noise-avg. score)", marker="^")
    _band(ax, xs, groups, "sum_logits_cosine", "#8c564b", r"paper: cos($\nabla \sum_c z_c$, score)", marker="v")
    _hline(ax, unreg["score_cosine"], "#2ca02c", ":", "unregularised" if exact else "unregularised (score)")
    unreg_bayes = None if exact else unreg.get("bayes_grad_cosine")  # exact kinds: score_cosine itself
    _hline(ax, unreg_bayes, "#9467bd", ":", "unregularised (learned Bayes grad)")  # skips None / NaN
    lows = [v for g in groups for key in ("score_cosine", "cond_score_cosine", "avg_score_cosine",
                                          "sum_logits_cosine", "bayes_grad_cosine")
            for v in (g.get(key + "_min"),) if v is not None and math.isfinite(v)]
    highs = [v for g in groups for key in ("score_cosine", "cond_score_cosine", "avg_score_cosine",
                                           "sum_logits_cosine", "bayes_grad_cosine")
             for v in (g.get(key + "_max"),) if v is not None and math.isfinite(v)]
    if unreg.get("score_cosine") is not None and math.isfinite(unreg["score_cosine"]):
        lows.append(unreg["score_cosine"])  # keep its dotted line in view
    if unreg_bayes is not None and math.isfinite(unreg_bayes):
        highs.append(unreg_bayes)  # and the Bayes-gradient one
    top = 1.02 if exact else min(1.02, max(0.1, 1.25 * max(highs, default=0.1)))
    ax.set_ylim(min(0.0, 1.1 * min(lows, default=0.0)), top)
    ax.axhline(0.0, color="gray", lw=0.6, zorder=1)
    ax.set_ylabel("mean cosine", fontsize=8)
    ax.set_title("(d) gradient alignment" + ("" if exact else " with the learned score"), fontsize=9)
    ax.legend(fontsize=6, loc="best")

    # Only the regimes this figure shades (a legend entry without data would mislead).
    handles = [Patch(color=c, label=f"regime: {k}") for k, c in REGIME_COLORS.items() if k in labels]
    if handles:
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.935), ncol=3,
                   fontsize=8, frameon=False)
    lines = ("dashed = Bayes-optimal, dotted = unregularised" if results["bayes_optimal"]
             else "dotted = unregularised reference (no Bayes-optimal model exists)")
    fig.suptitle(f"{results['preset']}: {regulariser}\nseed mean, band = min..max over "
                 f"{n_seeds} seed(s); {lines}", fontsize=10)
    return fig


def figure_sigma_curves(results: dict):
    """``R_T`` and ``R_N`` against sigma for the Bayes-optimal model, the
    unregularised model and, per regulariser, its best-score_cosine strength (seed 0)."""
    models = results["models"]
    picks = [("Bayes-optimal", results["bayes_optimal"])] if results["bayes_optimal"] else []
    seed0 = min(r["seed"] for r in models)
    picks.append(("unregularised", next(r for r in models
                                        if r["regularizer"] == "none" and r["seed"] == seed0)))
    for name, claim in results["claims"].items():
        row = next((r for r in models if r["regularizer"] == name and r["seed"] == seed0
                    and r["strength"] == claim["score_peak_strength"]), None)
        if row is not None:
            picks.append((f"{name} {row['strength']:g}", row))
    fig = new_figure(10, 4.6)
    ax_on, ax_off = fig.subplots(1, 2, sharey=True, gridspec_kw=dict(
        left=0.08, right=0.98, bottom=0.25, top=0.88, wspace=0.08))
    for label, row in picks:
        c = row["robustness_curve"]
        ax_on.plot(c["sigmas"], c["on"], marker="o", ms=3, label=label)
        ax_off.plot(c["sigmas"], c["off"], marker="s", ms=3, label=label)
    for ax, title in ((ax_on, r"on-manifold $R_T(\sigma)$"), (ax_off, r"off-manifold $R_N(\sigma)$")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"noise scale $\sigma$")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    handles, names = ax_on.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{results['preset']}: Def. 1 sensitivity vs noise scale (seed 0)",
                 fontsize=10)
    return fig
