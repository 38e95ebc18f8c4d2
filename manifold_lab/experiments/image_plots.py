"""Figures of the image kinds: the gradient gallery (Figure 1) and Figure 5.

- ``fig_gallery.png`` (rows with a ``gallery`` entry): for a few fixed held-out
  images, the first row is the images, the second the reference score, then
  one row per model (seed 0: the unregularised model, then every strength of
  each regulariser), each cell the input gradient ``grad_x log p(y|x)``; every
  cell is divided by its own max-abs value and drawn on the same [-1, 1] colour
  scale; each model row is titled with its regulariser, strength and regime.
- ``fig_distractor.png`` (rows with a ``half_curve``): the ratio signal /
  distractor sensitivity against the noise std, the unregularised model and
  every robust model (seed 0), the paper's Figure 5.
"""

from __future__ import annotations

import math

import torch

from manifold_lab.experiments.plots import new_figure
from manifold_lab.metrics.perceptual import normalize_images

__all__ = ["figure_gallery", "figure_distractor", "image_figures"]

_CELL = 1.1  # inches per gallery cell
_LABEL_WIDTH = 2.4  # inches for the row labels


def _seed0_rows(results: dict, key: str) -> list[dict]:
    rows = [r for r in results["models"] if key in r]
    if not rows:
        return []
    seed0 = min(r["seed"] for r in rows)
    rows = [r for r in rows if r["seed"] == seed0]
    order = {"none": -1, **{name: i for i, name in enumerate(results["claims"])}}
    return sorted(rows, key=lambda r: (order.get(r["regularizer"], len(order)), r["strength"]))


def _cells(values: list[list[float]], shape: list[int]) -> torch.Tensor:
    """``[n, D]`` lists -> ``[n, h, w]`` images, each max-abs normalised (first channel)."""
    t = torch.tensor(values, dtype=torch.float64).reshape(len(values), *shape)
    return normalize_images(t, "max_abs")[:, 0]


def figure_gallery(results: dict):
    """The gradient gallery, or ``None`` when no row has a ``gallery``."""
    rows = _seed0_rows(results, "gallery")
    if not rows:
        return None
    g0 = rows[0]["gallery"]
    shape, n = g0["shape"], len(g0["images"])
    lines = [("images", torch.tensor(g0["images"]).reshape(n, *shape)[:, 0], "gray", (0, 1)),
             ("reference score", _cells(g0["score"], shape), "bwr", (-1, 1))]
    for r in rows:
        label = "unregularised" if r["regularizer"] == "none" else f"{r['regularizer']} {r['strength']:g}"
        lines.append((f"{label} ({r.get('regime', '?')})", _cells(r["gallery"]["gradient"], shape), "bwr", (-1, 1)))
    aspect = shape[1] / shape[2]
    width = _LABEL_WIDTH + n * _CELL
    fig = new_figure(width, len(lines) * _CELL * aspect * 0.9 + 0.6)
    axes = fig.subplots(len(lines), n, squeeze=False, gridspec_kw=dict(
        left=_LABEL_WIDTH / width, right=0.99, top=1 - 0.4 / fig.get_figheight(), bottom=0.01, hspace=0.08, wspace=0.04))
    for i, (label, cells, cmap, (lo, hi)) in enumerate(lines):
        for j in range(n):
            ax = axes[i][j]
            ax.imshow(cells[j].numpy(), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(f"{results['preset']}: input gradients (each cell max-abs normalised)", fontsize=9)
    return fig


def figure_distractor(results: dict):
    """Signal / distractor sensitivity ratio vs sigma, or ``None`` without ``half_curve`` rows."""
    rows = _seed0_rows(results, "half_curve")
    if not rows:
        return None
    fig = new_figure(6.5, 4.2)
    ax = fig.subplots(1, 1, gridspec_kw=dict(left=0.12, right=0.70, bottom=0.13, top=0.9))
    for r in rows:
        c = r["half_curve"]
        ratio = [s / d if d and d > 0 else math.nan for s, d in zip(c["signal"], c["distractor"])]
        standard = r["regularizer"] == "none"
        label = "standard" if standard else f"{r['regularizer']} {r['strength']:g}"
        ax.plot(c["sigmas"], ratio, marker="o", ms=3, lw=2.5 if standard else 1.2,
                color="black" if standard else None, label=label)
    ax.axhline(1.0, color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"noise std $\sigma$ on one half")
    ax.set_ylabel("signal / distractor sensitivity")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title(f"{results['preset']}: softmax-L1 change, noise on one half (seed 0)", fontsize=9)
    return fig


def image_figures(results: dict) -> list[tuple[str, object]]:
    """``(file name, figure)`` of every image figure this run's rows allow."""
    out = []
    for name, make in (("fig_gallery.png", figure_gallery), ("fig_distractor.png", figure_distractor)):
        fig = make(results)
        if fig is not None:
            out.append((name, fig))
    return out
